"""The ordered parallel map: results in order, exceptions at their turn, threads kept between maps."""

from __future__ import annotations

import os
import threading
import time

import pytest

from deferral.checks.explicit import parallel
from deferral.checks.explicit.parallel import ordered_map


def test_results_come_in_task_order() -> None:
    def task(i: int) -> int:
        time.sleep(0.002 * ((7 - i) % 3))  # later tasks often finish first
        return i * i

    assert list(ordered_map(task, 9, 3)) == [i * i for i in range(9)]


def test_an_exception_is_raised_at_its_task_turn() -> None:
    def task(i: int) -> int:
        if i == 2:
            raise ValueError("task 2")
        return i

    seen = []
    with pytest.raises(ValueError, match="task 2"):
        for value in ordered_map(task, 5, 2):
            seen.append(value)
    assert seen == [0, 1]


def test_threads_are_kept_for_the_next_map() -> None:
    list(ordered_map(lambda i: i, 4, 2))  # the pool holds at least two threads now
    time.sleep(0.05)  # they go back to the pool after their last task
    before = parallel._started[0]
    for _ in range(20):
        assert list(ordered_map(lambda i: threading.current_thread().name, 4, 2))
        time.sleep(0.01)
    assert parallel._started[0] == before


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_its_own_threads() -> None:
    list(ordered_map(lambda i: i, 4, 2))
    pid = os.fork()
    if pid == 0:  # the child: the parent's pool threads do not exist here
        try:
            ok = list(ordered_map(lambda i: i + 1, 4, 2)) == [1, 2, 3, 4]
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0

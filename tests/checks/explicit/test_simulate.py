"""deferral simulate: seeded random walks find published bugs, shrink them, never say holds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deferral.checks.explicit.simulate import Walker, simulate
from deferral.model import PUBLISHED, Bounds
from deferral.model.concrete import Model


def test_walks_follow_the_model_and_are_seeded() -> None:
    model = Model(PUBLISHED["reference"], Bounds(2, 2, 1, 1))
    walker = Walker(model, depth=30)
    a = walker.batch(np.random.default_rng(5), 0, walkers=64)
    b = walker.batch(np.random.default_rng(5), 0, walkers=64)
    assert a == b and a[2] is None and a[0] == 64 * 31  # no deadlock in the reference


def test_finds_and_shrinks_a_published_bug() -> None:
    model = Model(PUBLISHED["reload-no-drain"], Bounds(2, 1, 1, 1))
    result = simulate(model, seed=1, depth=40, walks=4096, time_limit=60, workers=1)
    assert result.violated and result.prop == "no_stale_translation" and result.exit_code == 1
    assert result.path is not None and len(result.path) - 1 == 5  # the BFS finds the shortest
    assert result.found_length is not None and result.found_length >= 5
    final = result.path[-1][1]
    assert model.violations(final)


def test_a_shortest_violation_past_twenty_thousand_states_is_found_by_the_shrinking_search() -> None:
    """A user's tagged-TLB bug (tests/checks/symbolic/data/pcid_lazy_bug.py) is 15 steps deep at
    2,1,1,1,S=2, after 2,959,475 states of a search of that invariant alone: the shrinking search
    (the violated property alone, stopping at its level) reaches it; it stored 20,000 states before
    and said "no violation" with a 68-step path."""
    from deferral.model.variants import load_variant_file

    path = Path(__file__).parents[2] / "checks" / "symbolic" / "data" / "pcid_lazy_bug.py"
    model = Model(load_variant_file(str(path)), Bounds(2, 1, 1, 1, 2))
    # bounded by walks, not by time (seed 0 meets it at walk 36,864, 6 s on a quiet machine): a 10-s limit
    # missed it once under load
    result = simulate(model, seed=0, depth=100, walks=40_000, time_limit=120, workers=1)
    assert result.violated and result.found_length is not None and result.found_length > 15
    assert result.path is not None and len(result.path) - 1 == 15, result.shrink_log
    assert "15 steps, the shortest" in result.shrink_log[-1]


def test_nothing_found_is_unknown(cli) -> None:
    r = cli("simulate", "--vcpus", "3", "--pages", "2", "--depth", "20", "--walks", "1", "--workers", "1", "--json")
    doc = json.loads(r.out)
    assert r.code == 3 and doc["status"] == "unknown" and doc["states"] > 4096
    assert doc["bounds"] == {"vcpus": 3, "pages": 2, "frames": 1, "queue": 1}


def test_cli_writes_a_replayable_trace(cli, tmp_path: Path) -> None:
    trace = tmp_path / "sim.json"
    r = cli("simulate", "--variant", "drain-local-only", "--depth", "60", "--walks", "8192", "--workers", "2",
            "--seed", "3", "--trace-out", str(trace), "--time-limit", "120")
    assert r.code == 1, r.out + r.err
    assert "no_stale_translation violated" in r.out and "shrunk from" in r.out
    replayed = cli("replay", str(trace))
    assert replayed.code == 0 and "as expected" in replayed.out


def test_batches_grow_with_the_step_instances_and_walks_stay_seeded() -> None:
    from deferral.checks.explicit import simulate as sim

    small, big = Model(PUBLISHED["reference"], Bounds(2, 1, 1, 1)), Model(PUBLISHED["reference"], Bounds(4, 2, 2, 2, 2))
    assert Walker(small, 5).walkers == sim.BATCH  # small models: batches as before
    walker = Walker(big, 6)
    assert len(big.actions) >= 2 * sim.ACTIONS_PER_BATCH and walker.walkers == sim.batch_size(len(big.actions)) > sim.BATCH
    assert walker.prepare(None)  # every kernel compiled
    got = [walker.batch(np.random.default_rng(5), 0) for _ in range(2)]
    assert got[0][0] == got[1][0] == walker.walkers * 7  # the initial states and 6 steps each
    result = simulate(big, seed=3, depth=4, walks=1, workers=1, time_limit=60)
    assert result.walks == walker.walkers and result.states == walker.walkers * 5


TYPO = """
from deferral.model import REFERENCE, VCPU

def zap(s, i, p, sp):
    for k in s.each(VCPU):
        with s.when(s.shadw[k][sp][p] != 0):
            s.shadow[k][sp][p] = 0

VARIANT = REFERENCE.derive("typo", procedures={"resync": zap})
"""

PYTHON_IF = """
from deferral.model import REFERENCE, VCPU

def resync(s, i, p, sp):
    for k in s.each(VCPU):
        if s.shadow[k][sp][p] != 0:
            s.shadow[k][sp][p] = s.gpt[sp][p]

VARIANT = REFERENCE.derive("python-if", procedures={"resync": resync})
"""


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("text, said", [(TYPO, "shadw"), (PYTHON_IF, "state value as a Python value")])
def test_a_broken_variant_file_is_bad_input_with_any_number_of_workers(cli, tmp_path: Path, workers: str,
                                                                       text: str, said: str) -> None:
    """A step of the user's file that fails in a forked worker is the file's error (exit 2, one line),
    as it is with one worker, not an internal error of deferral (70)."""
    path = tmp_path / "broken.py"
    path.write_text(text)
    r = cli("simulate", "--variant-file", str(path), "--workers", workers, "--time-limit", "5")
    assert r.code == 2, r
    assert said in r.err and "internal error" not in r.err
    assert r.err.strip().count("\n") == 0 and "Traceback" not in r.err


def test_output_off_a_terminal_is_not_wrapped_at_80_columns(cli) -> None:
    r = cli("simulate", "--depth", "5", "--walks", "1", "--workers", "1")
    assert r.code == 3
    assert any(len(line) > 80 and line.startswith("no invariant violation found") and line.endswith("not all")
               for line in r.out.splitlines()), r.out


def _stubborn_work(walker, seed, worker, workers, max_batches, deadline, out) -> None:
    """A worker that ignores SIGTERM (as one still under an inherited handler, or blocked on the
    queue's lock, may): worker 0 fails at once, the others never finish."""
    import signal
    import time as _time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if worker == 0:
        out.put(("error", worker, 0, 0, 0, "ValueError: worker 0 failed"))
        return
    while True:
        _time.sleep(0.1)


def test_a_failing_worker_ends_the_simulation_even_when_another_ignores_sigterm(monkeypatch) -> None:
    """The parent's cleanup must end every worker whatever its signal handling, or it waits forever."""
    import threading

    import deferral.checks.explicit.simulate as sim

    monkeypatch.setattr(sim, "_work", _stubborn_work)
    model = Model(PUBLISHED["reference"], Bounds(2, 1, 1, 1))
    raised: list[BaseException] = []

    def run() -> None:
        try:
            simulate(model, workers=3, time_limit=30)
        except BaseException as exc:  # the worker's failure, re-raised by the parent
            raised.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "simulate() still waiting for a worker that ignores SIGTERM"
    assert raised and "worker 0 failed" in str(raised[0])


def test_a_negative_seed_is_bad_input_naming_the_flag(cli) -> None:
    """As engine run and conform say it; it was blamed on the protocol (numpy's error)."""
    r = cli("simulate", "--seed", "-1", "--walks", "1", "--workers", "1", "--depth", "2")
    assert r.code == 2
    assert r.err.strip() == "deferral: --seed must be non-negative, got -1"


@pytest.mark.parametrize("flag", ["--trace-out", "--itf"])
@pytest.mark.parametrize("target", ["/proc/nope/x.json", "{file}/x.json", "{fifo}"])
def test_output_paths_are_refused_before_the_walks(cli, tmp_path: Path, flag: str, target: str) -> None:
    """As check's: a path that cannot take a file is bad input at once (it was found only when a
    violation was written, after the walks), and a FIFO is never replaced by a regular file."""
    import os
    import stat

    (tmp_path / "file").write_text("x")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    path = target.format(file=tmp_path / "file", fifo=fifo)
    r = cli("simulate", "--variant", "drain-local-only", "--workers", "1", "--walks", "8192", "--depth", "60",
            "--seed", "3", flag, path)
    assert r.code == 2, r
    assert flag in r.err and r.err.count("\n") == 1
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_read_at_an_index_out_of_range_is_the_concrete_models_error_naming_the_state(lost_cur) -> None:
    """The walks' kernels select among a variable's elements: a read through ``none`` read one of them and
    simulate answered "nothing found" (exit 3) for a variant the concrete model refuses."""
    from deferral.model.context import StepError

    with pytest.raises(StepError, match=r"index out of range: pg\[2\]; state"):
        simulate(Model(lost_cur, Bounds(2, 1, 1, 1)), seed=0, depth=30, walks=2048, time_limit=60, workers=1)


def test_a_depth_far_past_what_the_time_allows_is_walked_as_far_as_the_time_goes(cli) -> None:
    """--depth 100000000 allocated every walk's history up front (4,096 walks of 10^8 steps: 1.6 TB,
    "out of memory", exit 3 without walking): the history grows with the steps taken."""
    r = cli("simulate", "--depth", "100000000", "--time-limit", "1", "--workers", "1", "--json")
    doc = json.loads(r.out)
    assert r.code == 3 and doc["status"] == "unknown" and doc["states"] > 4096, r.err


def test_the_history_grown_as_the_walks_go_replays(monkeypatch) -> None:
    from deferral.checks.explicit import simulate as sim

    monkeypatch.setattr(sim, "HISTORY_ROWS", 2)  # grown several times before the violation
    model = Model(PUBLISHED["reload-no-drain"], Bounds(2, 1, 1, 1))
    result = simulate(model, seed=1, depth=10**9, walks=4096, time_limit=60, workers=1)
    assert result.violated and result.found_length is not None and result.found_length >= 5
    assert len(result.path) - 1 == 5  # the walk replayed on the concrete model, then shrunk


def test_ctrl_c_while_shrinking_reports_the_shortest_violation_found_so_far(cli, monkeypatch, tmp_path: Path) -> None:
    """Interrupted while it shrinks (here in its last stage, the breadth-first search), simulate
    reported "interrupted" (130) and lost the violation: it reports the shortest one found so far
    (exit 1, the trace written) and says the shrinking was cut short."""
    from deferral.checks.explicit import simulate as sim

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sim, "search_reduced_if_alike", interrupted)
    trace = tmp_path / "sim.json"
    r = cli("simulate", "--variant", "reload-no-drain", "--depth", "40", "--walks", "4096", "--workers", "1",
            "--seed", "1", "--trace-out", str(trace), "--time-limit", "60", "--json")
    assert r.code == 1, r.out + r.err
    doc = json.loads(r.out)
    assert doc["status"] == "violated" and doc["length"] >= 5 and "interrupted" in doc["shrink"][-1]
    replayed = cli("replay", str(trace))
    assert replayed.code == 0 and "as expected" in replayed.out


def test_the_replay_command_it_suggests_replays_a_variant_files_trace(cli, tmp_path: Path) -> None:
    """The trace line names a command that works: a trace taken with a variant file replays
    only with ``--variant-file`` given (a trace never loads code), so the hint must carry it,
    quoted for the shell (before, it said ``deferral replay FILE`` and that command exited 2)."""
    import shlex

    folder = tmp_path / "my dir"
    folder.mkdir()
    path = folder / "local.py"
    path.write_text("from deferral.model import REFERENCE\n\n\n"
                    "def resync(s, i, p, sp=0):\n"
                    "    with s.when(s.shadow[i][sp][p] != 0):\n"
                    "        s.shadow[i][sp][p] = s.gpt[sp][p]\n\n\n"
                    "VARIANT = REFERENCE.derive('local', procedures={'resync': resync})\n")
    trace = tmp_path / "t.json"
    r = cli("simulate", "--variant-file", str(path), "--depth", "60", "--walks", "8192", "--workers", "1",
            "--time-limit", "30", "--trace-out", str(trace))
    assert r.code == 1, r
    line = next(x for x in r.out.splitlines() if x.startswith("trace: "))
    argv = shlex.split(line.split("(", 1)[1].rsplit(")", 1)[0])
    assert argv[:2] == ["deferral", "replay"], line
    replayed = cli(*argv[1:])
    assert replayed.code == 0, replayed
    assert "violates no_stale_translation" in replayed.out and "as expected" in replayed.out


def test_default_workers_are_the_cpus_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --workers, one walker process per CPU of the process's affinity, not per CPU of the machine."""
    from deferral.checks.explicit import simulate as simulate_module

    monkeypatch.setattr(simulate_module, "usable_cpus", lambda: 1)
    assert simulate(Model(PUBLISHED["reference"], Bounds(2, 1, 1, 1)), walks=4, depth=10).workers == 1

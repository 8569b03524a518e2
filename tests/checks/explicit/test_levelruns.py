"""A level's chunks merged in groups as they come: same states, numbers, paths and verdicts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deferral.checks.explicit import levelmerge, spill
from deferral.checks.explicit import vectorized
from deferral.checks.explicit.levelruns import LevelRuns
from deferral.checks.explicit.vectorized import explore_vectorized
from deferral.checks.results import SearchResult
from deferral.model.bounds import Bounds
from deferral.model.variants import PUBLISHED


def _summary(r: SearchResult) -> tuple:
    return (r.states, r.transitions, r.depth, r.complete, r.stopped_by,
            [(o.name, o.status, o.length, None if o.path is None else [s for _, s in o.path])
             for o in r.outcomes], r.coverage)


def test_a_group_keeps_the_earliest_chunks_parent_and_says_where_each_candidate_went() -> None:
    parts = [(np.array([2, 5, 9], np.uint64), np.array([0, 1, 2], np.uint32), np.array([7, 7, 7], np.uint8)),
             (np.array([1, 5], np.uint64), np.array([3, 4], np.uint32), np.array([8, 8], np.uint8)),
             (np.zeros(0, np.uint64), np.zeros(0, np.uint32), np.zeros(0, np.uint8)),
             (np.array([2, 9, 11], np.uint64), np.array([5, 6, 7], np.uint32), np.array([9, 9, 9], np.uint8))]
    keys, parents, actions, slots = levelmerge.merge_run(parts)
    assert keys.tolist() == [1, 2, 5, 9, 11]
    assert parents.tolist() == [3, 0, 1, 2, 7]  # 2, 5 and 9: from the first chunk, not later ones
    assert actions.tolist() == [8, 7, 7, 7, 9]
    assert [s.tolist() for s in slots] == [[1, 2, 3], [0, 2], [], [1, 3, 4]]
    for (chunk_keys, _, _), slot in zip(parts, slots):
        assert keys[slot].tolist() == chunk_keys.tolist()


def test_held_arrays_stay_in_memory_through_a_spill(tmp_path: Path) -> None:
    work = spill.WorkDir(tmp_path)
    parked = spill.Parked(work)
    parked.put("held", np.arange(10, dtype=np.uint64), sorted_keys=True, hold=True)
    parked.put("free", np.arange(10, dtype=np.uint64), sorted_keys=True, block=4)
    parked.spill()
    assert parked.memory_bytes == 80  # the held one only
    assert parked.get("free", 3, 9).tolist() == list(range(3, 9))  # read back across blocks of 4
    assert parked.pop("held").tolist() == list(range(10))
    work.close()


def test_runs_group_consecutive_chunks_once_grouping_starts() -> None:
    parked = spill.Parked(None)
    runs = LevelRuns(parked, group_candidates=4, slots=True)
    chunks = [np.array([3, 8], np.uint64), np.array([1, 3, 4], np.uint64), np.array([8], np.uint64),
              np.array([2, 4, 6], np.uint64), np.array([0], np.uint64)]
    for i, keys in enumerate(chunks):
        for name, array in zip(LevelRuns.chunk_names(i), (keys, np.full(keys.shape, i, np.uint32),
                                                           np.zeros(keys.shape, np.uint8))):
            parked.put(name, array, sorted_keys=name[0] == "keys", hold=runs.grouping)
        runs.add(i, keys.shape[0], levelmerge.sample(keys))
        runs.grouping = True  # from the second chunk on (as a first spill in mid-level)
    runs.finish()
    assert runs.run_of == [0, 1, 1, 2, 2]  # chunk 0 alone; 1+2 reach 4 candidates; 3+4 end the level
    assert runs.sizes == [2, 4, 4]
    assert runs.read(1, 0, 4)[0].tolist() == [1, 3, 4, 8] and runs.read(1, 0, 4)[1].tolist() == [1, 1, 1, 2]
    states = np.arange(4) * 10
    assert runs.chunk_states(2, states).tolist() == [30]  # chunk 2's key 8 is the run's fourth
    assert runs.chunk_states(0, np.array([5, 6])).tolist() == [5, 6]  # a chunk's own run
    assert not runs.done_with(1) and runs.done_with(2)


@pytest.mark.parametrize("variant,bounds,max_states", [
    ("reference", (2, 1, 2, 2), None),  # holds
    ("drain-local-only", (2, 1, 1, 2), None),  # invariant violated
    ("wait-irqs-off", (2, 1, 1, 2), None),  # liveness violated
    ("reference", (2, 1, 2, 2), 20_000),  # cut by --max-states
])
def test_grouped_levels_match_ungrouped_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variant: str,
                                             bounds: tuple[int, ...], max_states: int | None) -> None:
    """Small chunks and groups (many of each a level), spilled and in memory, against the same
    chunks ungrouped: every figure, verdict and counterexample is the same."""
    b = Bounds(*bounds)
    monkeypatch.setattr(vectorized, "CHUNK_ROWS", 256)
    monkeypatch.setattr(vectorized, "GROUP_FROM", 1 << 30)
    plain = explore_vectorized(PUBLISHED[variant], b, workers=1, max_states=max_states)
    monkeypatch.setattr(vectorized, "GROUP_CANDIDATES", 1500)
    spilled = explore_vectorized(PUBLISHED[variant], b, workers=2, max_states=max_states,
                                 work_dir=str(tmp_path), spill_above=1)
    assert spilled.stats["spills"] > 0
    monkeypatch.setattr(vectorized, "GROUP_FROM", 0)
    in_memory = explore_vectorized(PUBLISHED[variant], b, workers=2, max_states=max_states)
    assert _summary(spilled) == _summary(plain) == _summary(in_memory)
    assert list(tmp_path.iterdir()) == []


def test_the_next_frontier_is_written_a_key_range_at_a_time(tmp_path: Path) -> None:
    work = spill.WorkDir(tmp_path)
    frontier = spill.KeysFile(work, [], np.uint64)
    assert frontier.shape == (0,)
    frontier.append([np.array([1, 4], np.uint64)])
    frontier.append([])
    frontier.append([np.array([6], np.uint64), np.array([9, 12], np.uint64)])
    assert frontier.shape == (5,)
    assert frontier[1:4].tolist() == [4, 6, 9] and frontier.array().tolist() == [1, 4, 6, 9, 12]
    frontier.close()
    work.close()

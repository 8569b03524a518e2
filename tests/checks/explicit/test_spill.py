"""Disk spill (--work-dir): a search forced to spill every level gives the in-memory results;
the on-disk runs answer lookups like a dict; a full disk stops with exit 3; bad folders exit 2."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

from deferral.checks.explicit import spill
from deferral.checks.explicit.vectorized import explore_vectorized
from deferral.checks.explicit.visited import Run
from deferral.checks.results import SearchResult
from deferral.cli.main import main
from deferral.model.bounds import Bounds
from deferral.model.variants import PUBLISHED


def _summary(r: SearchResult) -> tuple:
    return (r.states, r.transitions, r.depth, r.complete, r.stopped_by,
            [(o.name, o.status, o.length, None if o.path is None else [s for _, s in o.path])
             for o in r.outcomes], r.coverage)


@pytest.mark.parametrize("variant,bounds,max_states", [
    ("reference", (2, 1, 2, 2), None),  # holds
    ("drain-local-only", (2, 1, 1, 2), None),  # invariant violated
    ("wait-irqs-off", (2, 1, 1, 2), None),  # liveness violated
    ("reference", (2, 1, 2, 2), 20_000),  # cut by --max-states after spills
])
def test_spilling_every_level_matches_the_in_memory_search(tmp_path: Path, variant: str,
                                                           bounds: tuple[int, ...], max_states: int | None) -> None:
    b = Bounds(*bounds)
    whole = explore_vectorized(PUBLISHED[variant], b, workers=1, max_states=max_states)
    spilled = explore_vectorized(PUBLISHED[variant], b, workers=2, max_states=max_states,
                                 work_dir=str(tmp_path), spill_above=1)
    assert spilled.stats["spills"] >= whole.depth - 1 and spilled.stats["spilled_bytes"] > 0
    assert _summary(spilled) == _summary(whole)
    assert list(tmp_path.iterdir()) == []  # the search's subfolder is removed at the end


def test_disk_runs_answer_lookups_like_a_dict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spill, "BLOCK", 100)  # many blocks, some skipped by the fences
    rng = np.random.default_rng(7)
    keys = np.unique(rng.integers(0, 1 << 62, 5000, dtype=np.uint64))
    perm = rng.permutation(keys.shape[0])
    runs = [np.sort(keys[perm[:3000]]), np.sort(keys[perm[3000:4000]])]
    work = spill.WorkDir(tmp_path)
    disk = spill.DiskRuns(work, np.uint64)
    truth: dict[int, int] = {}
    for r, run in enumerate(runs):
        ids = np.arange(run.shape[0], dtype=np.uint32) + np.uint32(10_000 * r)
        cuts = [0, 7, 1234, run.shape[0]]  # blocks of uneven sizes: fences span them
        disk.add(Run([run[a:b] for a, b in zip(cuts, cuts[1:])], [ids[a:b] for a, b in zip(cuts, cuts[1:])]))
        truth.update(zip(run.tolist(), ids.tolist()))
    queries = np.unique(np.concatenate([keys[perm[2500:]], rng.integers(0, 1 << 62, 300, dtype=np.uint64)]))
    out = np.full(queries.shape[0], -1, dtype=np.int64)
    disk.lookup(queries, out)
    assert out.tolist() == [truth.get(q, -1) for q in queries.tolist()]
    column = spill.Column(np.uint32, work, "c")
    column.append(np.arange(5))
    column.spill()
    column.append(np.arange(5, 9))
    assert np.concatenate(list(column.read())).tolist() == list(range(9)) == column.array().tolist()
    work.close()
    assert not work.path.exists()


@pytest.mark.parametrize("key_dtype,in_c", [(np.dtype(np.uint64), True), (np.dtype("V16"), True),
                                            (np.dtype("V16"), False)])
def test_runs_of_another_block_size_and_successive_lookups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           key_dtype: np.dtype, in_c: bool) -> None:
    """A run adopted as a checkpoint of an older version wrote it (blocks of another size) is
    read right, and lookups in ascending pieces (a level's merge, reusing the block decoded
    last) answer as one lookup of them all; with the C walk of a block, and numpy's search."""
    if not in_c:
        monkeypatch.setattr(spill.levelc, "find_sorted", lambda block, queries: None)
    rng = np.random.default_rng(11)
    words = np.unique(rng.integers(0, 1 << 40, size=(6000, key_dtype.itemsize // 8), dtype=np.uint64), axis=0)
    keys = np.ascontiguousarray(words.astype(">u8")).view(key_dtype).ravel() if key_dtype.kind == "V" \
        else np.ascontiguousarray(words[:, 0])
    keys = np.unique(keys)
    ids = rng.permutation(keys.shape[0]).astype(np.uint32)
    work = spill.WorkDir(tmp_path)
    monkeypatch.setattr(spill, "BLOCK", 1024)  # the older runs' blocks (2**20 before this version)
    old = spill.DiskRuns(work, key_dtype)
    old.add(Run([keys[:2500], keys[2500:]], [ids[:2500], ids[2500:]]))
    saved = old.saved()[0]
    monkeypatch.setattr(spill, "BLOCK", 64)  # this version's
    disk = spill.DiskRuns(work, key_dtype)
    disk.adopt(lambda path: np.asarray(saved["keys"]).tofile(path), lambda path: np.asarray(saved["ids"]).tofile(path),
               saved["offsets"], saved["fence"], keys.shape[0], np.dtype(np.uint32))
    assert disk.runs[0].size == 1024 and spill.block_size_of(keys.shape[0], 6) == 1024
    absent = rng.integers(0, 1 << 40, size=(500, key_dtype.itemsize // 8), dtype=np.uint64) | np.uint64(1 << 41)
    absent = (np.ascontiguousarray(absent.astype(">u8")).view(key_dtype).ravel() if key_dtype.kind == "V"
              else np.ascontiguousarray(absent[:, 0]))
    other = np.unique(np.concatenate([keys[rng.permutation(keys.shape[0])[:3000]], absent]))
    want = np.full(other.shape[0], -1, dtype=np.int64)
    pos = np.searchsorted(keys, other)
    found = (pos < keys.shape[0]) & (keys[np.minimum(pos, keys.shape[0] - 1)] == other)
    want[found] = ids[pos[found]]
    for runs in (disk, old):
        out = np.full(other.shape[0], -1, dtype=np.int64)
        for a in range(0, other.shape[0], 77):  # ascending pieces
            runs.lookup(other[a:a + 77], out[a:a + 77])
        assert out.tolist() == want.tolist()
    work.close()


def test_full_disk_stops_with_exit_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(spill, "_save_blocks", full)
    code = main(["check", "--vcpus", "2", "--pages", "1", "--frames", "1", "--queue", "2",
                 "--work-dir", str(tmp_path), "--spill-above", "1"])
    err = capsys.readouterr().err
    assert code == 3
    assert "full while writing" in err
    assert list(tmp_path.iterdir()) == []


def test_bad_work_dir_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    base = ["check", "--vcpus", "2", "--pages", "1", "--frames", "1", "--queue", "1"]
    assert main([*base, "--work-dir", str(tmp_path / "file" / "sub")]) == 2
    assert main([*base, "--spill-above", "1M"]) == 2
    assert main([*base, "--work-dir", str(tmp_path), "--engine", "plain"]) == 2
    err = capsys.readouterr().err
    assert "--work-dir" in err and "--spill-above needs --work-dir" in err


def test_a_spill_keeps_the_newest_runs_and_the_search_gives_the_same_results(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Spills that leave the newest visited runs in memory (half the keys) and runs of many
    small blocks: the in-memory results, with keys both in memory and on disk at every level."""
    from deferral.checks.explicit import vectorized, visited
    b = Bounds(2, 1, 2, 2)
    whole = explore_vectorized(PUBLISHED["reference"], b, workers=1)
    monkeypatch.setattr(vectorized, "KEEP_RECENT", 0.5)
    monkeypatch.setattr(visited, "MIN_BLOCK", 64)
    spilled = explore_vectorized(PUBLISHED["reference"], b, workers=2, work_dir=str(tmp_path), spill_above=1)
    assert spilled.stats["spills"] >= whole.depth - 1
    assert _summary(spilled) == _summary(whole)


@pytest.mark.parametrize("variant", ["reference", "wait-irqs-off"])
def test_resume_with_a_work_dir_moves_the_checkpoint_to_disk_as_it_reads(tmp_path: Path, variant: str) -> None:
    """A resume with --work-dir writes the checkpoint's runs and columns to disk an array at a
    time (nothing stays in memory from them) and ends with the uninterrupted run's results."""
    from deferral.checks.explicit import vectorized
    b = Bounds(2, 1, 1, 2)
    whole = explore_vectorized(PUBLISHED[variant], b, workers=1)
    folder = tmp_path / "ck"
    cut = explore_vectorized(PUBLISHED[variant], b, workers=1, max_states=whole.states // 2,
                             checkpoint_dir=str(folder), checkpoint_every=0.0)
    assert cut.stopped_by == "max-states" and cut.stats["checkpoints_written"] >= 1
    loaded: list[int] = []
    original = vectorized._Search._state_from

    def spy(self, directory, header, arrays):  # type: ignore[no-untyped-def]
        st = original(self, directory, header, arrays)
        loaded.append(st.visited.nbytes + st.parents.memory_bytes + st.vias.memory_bytes
                      + st.edges_deg.memory_bytes + st.edges_dst.memory_bytes)
        return st
    work = tmp_path / "work"
    with pytest.MonkeyPatch.context() as m:
        m.setattr(vectorized._Search, "_state_from", spy)
        resumed = explore_vectorized(PUBLISHED[variant], b, workers=2, resume_dir=str(folder),
                                     work_dir=str(work), spill_above=1 << 40)
    assert loaded == [0] and resumed.stats["spilled_bytes"] > 0
    assert _summary(resumed) == _summary(whole)
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("variant,bounds,spill_above", [
    ("reference", (2, 1, 2, 2), None),  # level merged in pieces, in memory
    ("wait-irqs-off", (2, 1, 1, 2), 1),  # and with every level's chunk arrays and frontier on disk
    ("drain-local-only", (2, 1, 1, 2), 1),
    ("reference", (2, 1, 1, 1, 2), 1),  # address spaces, cut by --max-states
])
def test_level_merged_in_small_pieces_gives_the_same_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              variant: str, bounds: tuple[int, ...],
                                                              spill_above: int | None) -> None:
    """A level's candidates merged a few keys at a time (many pieces, chunks with candidates
    in some pieces only), the chunks' arrays parked in files and the frontier read from one:
    the results of the search that merges each level at once."""
    from deferral.checks.explicit import levelmerge, vectorized
    b = Bounds(*bounds)
    monkeypatch.setattr(vectorized, "CHUNK_ROWS", 97)  # many chunks (the same in both)
    cut = 8_000 if len(bounds) > 4 else None
    whole = explore_vectorized(PUBLISHED[variant], b, workers=1, max_states=cut)
    monkeypatch.setattr(levelmerge, "PIECE", 40)
    monkeypatch.setattr(vectorized, "MERGE_PER_CHUNK", 0)  # spilled pieces do not grow with the chunks
    monkeypatch.setattr(levelmerge, "SAMPLE", 4)
    work = None if spill_above is None else str(tmp_path)
    pieces = explore_vectorized(PUBLISHED[variant], b, workers=2, work_dir=work, spill_above=spill_above,
                                max_states=cut)
    assert _summary(pieces) == _summary(whole)
    if spill_above is not None:
        assert pieces.stats["spills"] >= 1 and list(tmp_path.iterdir()) == []


def test_a_memory_limit_below_what_the_search_holds_finishes_with_a_work_dir(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A --memory-limit below what the in-memory search holds at its peak (the visited runs,
    columns, the level's chunk arrays and frontier): with a work folder it spills them as they
    grow and finishes with the in-memory results. Resident memory is replaced by what the
    search holds (the interpreter's own is too big and noisy at a size a test can run; the
    figures at 2,2,1,2 in benchmarks/README.md are of real resident memory)."""
    from deferral.checks.explicit import levelmerge, limits, vectorized, visited
    monkeypatch.setattr(vectorized, "CHUNK_ROWS", 512)  # what a level is about to allocate: small
    monkeypatch.setattr(visited, "MIN_BLOCK", 512)
    monkeypatch.setattr(levelmerge, "PIECE", 1024)
    monkeypatch.setattr(vectorized, "MERGE_PER_CHUNK", 0)
    # what a chunk is about to allocate, as the search estimates it (first from the action
    # count, 51 successors a row): small beside the limit
    monkeypatch.setattr(vectorized, "expansion_bytes", lambda rows, *args: 64 * rows)
    searches: list = []
    init = vectorized._Search.__init__

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        init(self, *args, **kwargs)
        searches.append(self)
    monkeypatch.setattr(vectorized._Search, "__init__", spy)
    most = [0]

    def held() -> int:
        s = searches[-1]
        st = s.st
        if st is None:
            return 0
        front = st.frontier_keys.nbytes if isinstance(st.frontier_keys, np.ndarray) else 0
        now = s._stored_in_memory(st) + s.parked.memory_bytes + front
        most[0] = max(most[0], now)
        return now
    monkeypatch.setattr(limits, "rss_bytes", held)
    b = Bounds(2, 1, 2, 2)
    whole = explore_vectorized(PUBLISHED["wait-irqs-off"], b, workers=1, memory_limit=1 << 29)
    peak, most[0] = most[0], 0
    spilled = explore_vectorized(PUBLISHED["wait-irqs-off"], b, workers=2, memory_limit=peak // 3,
                                 work_dir=str(tmp_path))
    assert spilled.stats["spills"] >= 1 and most[0] <= peak // 3
    assert _summary(spilled) == _summary(whole)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("variant", ["reference", "wait-irqs-off"])
def test_a_checkpoint_of_a_spilled_search_resumes_with_a_work_dir(tmp_path: Path, variant: str) -> None:
    """--checkpoint beside --work-dir: the checkpoints of a search that spilled every level
    (its runs compressed on disk, its frontier in a file) resume, with a work folder or
    without, to the uninterrupted run's results."""
    b = Bounds(2, 1, 1, 2)
    whole = explore_vectorized(PUBLISHED[variant], b, workers=1)
    folder = tmp_path / "ck"
    cut = explore_vectorized(PUBLISHED[variant], b, workers=2, max_states=whole.states // 2,
                             checkpoint_dir=str(folder), checkpoint_every=0.0,
                             work_dir=str(tmp_path / "w1"), spill_above=1)
    assert cut.stopped_by == "max-states" and cut.stats["spills"] >= 2 and cut.stats["checkpoints_written"] >= 1
    resumed = explore_vectorized(PUBLISHED[variant], b, workers=2, resume_dir=str(folder),
                                 work_dir=str(tmp_path / "w2"), spill_above=1)
    assert _summary(resumed) == _summary(whole)
    in_memory = explore_vectorized(PUBLISHED[variant], b, workers=1, resume_dir=str(folder))
    assert _summary(in_memory) == _summary(whole)


@pytest.mark.parametrize("variant,bounds", [("wait-irqs-off", (2, 1, 1, 2)), ("reference", (2, 1, 2, 2))])
def test_the_streamed_ag_ef_pass_gives_the_same_verdicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         variant: str, bounds: tuple[int, ...]) -> None:
    """With a work folder, an AG EF pass whose CSR would pass the memory limit reads the
    spilled edges again and again instead: same verdicts and counterexamples."""
    from deferral.checks.explicit import vectorized
    b = Bounds(*bounds)
    whole = explore_vectorized(PUBLISHED[variant], b, workers=1)
    streamed: list[bool] = []
    original = vectorized._Search._streamed_ag_ef

    def forced(self, n_states, n_edges):  # type: ignore[no-untyped-def]
        streamed.append(original(self, n_states, n_edges))
        return True
    monkeypatch.setattr(vectorized._Search, "_streamed_ag_ef", forced)
    spilled = explore_vectorized(PUBLISHED[variant], b, workers=2, work_dir=str(tmp_path), spill_above=1)
    assert streamed == [False] and _summary(spilled) == _summary(whole)


@pytest.mark.parametrize("variant,bounds", [("wait-irqs-off", (2, 1, 1, 2)), ("reference", (2, 1, 2, 2))])
def test_dropping_transitions_out_of_goal_sources_keeps_the_same_edges(monkeypatch: pytest.MonkeyPatch,
                                                                        variant: str, bounds: tuple[int, ...]) -> None:
    """The chunks' AG EF successors out of sources known to reach the goal are dropped before
    the level's end: the same kept edges (bytes), flags, verdicts and counterexamples."""
    from deferral.checks.explicit import vectorized
    b = Bounds(*bounds)
    stored: list[list[int]] = []
    store = vectorized.store_edges

    def spy(local, dst, rows, edges_deg, edges_dst):  # type: ignore[no-untyped-def]
        stored[-1].extend(dst.tolist())
        store(local, dst, rows, edges_deg, edges_dst)
    monkeypatch.setattr(vectorized, "store_edges", spy)
    stored.append([])
    dropped = explore_vectorized(PUBLISHED[variant], b, workers=2)
    monkeypatch.setattr(vectorized, "_drop_goal_sources", lambda chunk, goals, base, lo, rows: chunk)
    stored.append([])
    kept = explore_vectorized(PUBLISHED[variant], b, workers=2)
    assert stored[0] == stored[1] and len(stored[0]) > 0
    assert _summary(dropped) == _summary(kept)


@pytest.mark.parametrize("below", [3000, 20_000])
def test_codes_widened_at_numbering_give_the_same_results(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          below: int) -> None:
    """A level whose chunks coded targets in int32 but whose new states' numbers pass the
    int32 bound (here made small) widens the codes and the candidates' states in its merge,
    when the numbers get there (not before: 8 bytes a candidate held for nothing stopped 3,2,1,2
    at level 20): the same results, in memory and spilled."""
    from deferral.checks.explicit import vectorized
    b = Bounds(2, 1, 1, 2)
    whole = explore_vectorized(PUBLISHED["wait-irqs-off"], b, workers=1)
    monkeypatch.setattr(vectorized, "_CODES32_BELOW", below)
    widened: list[int] = []
    real = vectorized._widen_past_int32

    def spy(cand_state: list, numbers_below: int) -> None:  # type: ignore[type-arg]
        was = cand_state[0].dtype if cand_state else None
        real(cand_state, numbers_below)
        if cand_state and was != cand_state[0].dtype:
            widened.append(numbers_below)
    monkeypatch.setattr(vectorized, "_widen_past_int32", spy)
    assert _summary(explore_vectorized(PUBLISHED["wait-irqs-off"], b, workers=2)) == _summary(whole)
    crossing = int(whole.states > below)  # 5,897 states: past 3,000, not past 20,000
    assert len(widened) == crossing and all(n > below for n in widened)  # once: the level numbering past it
    spilled = explore_vectorized(PUBLISHED["wait-irqs-off"], b, workers=2, work_dir=str(tmp_path), spill_above=1)
    assert _summary(spilled) == _summary(whole) and len(widened) == 2 * crossing


def _open_descriptors() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts descriptors in /proc")
def test_parked_arrays_keep_a_bounded_number_of_files_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide level parks tens of thousands of arrays (3,2,1,2 ran out of descriptors at 20,000):
    reading them all, from several threads, keeps at most MAX_OPEN_FILES open, and reads right."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(spill, "MAX_OPEN_FILES", 4)
    work = spill.WorkDir(tmp_path)
    parked = spill.Parked(work)
    rng = np.random.default_rng(7)
    arrays = {}
    for n in range(60):
        keys = np.sort(rng.integers(0, 1 << 40, 3000, dtype=np.uint64))
        arrays[("keys", n)] = keys
        parked.put(("keys", n), keys, sorted_keys=True)
        arrays[("ids", n)] = rng.integers(0, 1 << 30, 1000).astype(np.uint32)
        parked.put(("ids", n), arrays[("ids", n)])
    parked.spill()
    before = _open_descriptors()

    def read(name: object) -> bool:
        whole = arrays[name]
        return all(np.array_equal(parked.get(name, a, a + 700), whole[a:a + 700]) for a in range(0, whole.size, 350))

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(read, list(arrays) * 3))
        assert _open_descriptors() <= before + spill.MAX_OPEN_FILES
    for name in list(arrays)[:10]:
        assert np.array_equal(parked.pop(name), arrays[name])
    parked.clear()
    assert _open_descriptors() <= before
    work.close()


def test_drop_forgets_a_spilled_array_without_reading_it(tmp_path, monkeypatch) -> None:
    """A level's merged candidates are dropped, not read back (3,2,1,2: 14,000 chunks' arrays)."""
    from deferral.checks.explicit.spill import Parked, WorkDir

    work = WorkDir(tmp_path)
    parked = Parked(work)
    parked.put("keys", np.arange(1000, dtype=np.uint64), sorted_keys=True)
    parked.spill()
    assert len(list(work.path.iterdir())) == 1
    monkeypatch.setattr(Parked, "_read", staticmethod(lambda *a: (_ for _ in ()).throw(AssertionError("read"))))
    parked.drop("keys")
    assert "keys" not in parked and not list(work.path.iterdir())
    work.close()

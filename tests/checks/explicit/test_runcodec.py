"""Compressed runs (runcodec): blocks decode to exactly the keys encoded, and a run spilled
compressed answers membership and merges like the plain run in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deferral.checks.explicit import levelc, runcodec, spill
from deferral.checks.explicit.visited import Run, as_run, merge_runs

_TWO = np.dtype("V16")


def _keys(rng: np.random.Generator, n: int, words: int, spread: int) -> np.ndarray:
    """``n`` sorted unique keys: one word below 2**spread, or two words (the second small)."""
    first = rng.integers(0, 1 << spread, n, dtype=np.uint64)
    if words == 1:
        return np.unique(first)
    rows = np.stack([first, rng.integers(0, 3000, n, dtype=np.uint64)], axis=1)
    return np.unique(np.ascontiguousarray(rows.astype(">u8")).view(_TWO).ravel())


@pytest.mark.parametrize("words,spread", [(1, 20), (1, 40), (1, 63), (2, 12), (2, 50), (2, 63)])
def test_a_block_decodes_to_the_keys_encoded(words: int, spread: int) -> None:
    rng = np.random.default_rng(spread)
    keys = _keys(rng, 20_000, words, spread)
    keys = np.concatenate([keys[:1], keys[1:][rng.random(keys.shape[0] - 1) < 0.5]])  # uneven gaps
    block = runcodec.encode(keys)
    assert block.dtype == np.uint8 and block.nbytes < keys.nbytes
    back = runcodec.decode(block, keys.dtype)
    assert back.dtype == keys.dtype and back.tobytes() == keys.tobytes()
    assert runcodec.decode(runcodec.encode(keys[:1]), keys.dtype).tobytes() == keys[:1].tobytes()


@pytest.mark.parametrize("words", [1, 2])
def test_a_compressed_run_answers_and_merges_like_the_plain_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               words: int) -> None:
    monkeypatch.setattr(spill, "BLOCK", 1000)  # many compressed blocks, some skipped by the fences
    rng = np.random.default_rng(words)
    keys = _keys(rng, 12_000, words, 45)
    perm = rng.permutation(keys.shape[0])
    a_keys, b_keys = np.sort(keys[perm[:7000]]), np.sort(keys[perm[7000:]])
    a = as_run(a_keys, rng.permutation(a_keys.shape[0]).astype(np.uint32))
    b = as_run(b_keys, (rng.permutation(b_keys.shape[0]) + 50_000).astype(np.uint32))
    work = spill.WorkDir(tmp_path)
    disk = spill.DiskRuns(work, keys.dtype)
    disk.add(a)
    disk.add(b)
    assert disk.key_bytes < keys.nbytes
    queries = np.unique(np.concatenate([keys[perm[::3]], _keys(rng, 500, words, 45)]))
    plain = np.full(queries.shape[0], -1, dtype=np.int64)
    for run in (a, b):
        run.lookup(queries, plain, None)
    packed = np.full(queries.shape[0], -1, dtype=np.int64)
    disk.lookup(queries, packed)
    assert packed.tolist() == plain.tolist() and (plain >= 0).sum() > 0
    # the runs read back (as a checkpoint reads them) merge into the plain runs' merge
    back = []
    for saved in disk.saved():
        blocks = spill.DiskRuns.decoded(np.asarray(saved["keys"]), saved["offsets"], keys.dtype)
        back.append(Run([np.concatenate(blocks)], [np.asarray(saved["ids"])]))
    merged, plain_merged = merge_runs(back[0], back[1]), merge_runs(a, b)
    assert np.concatenate(merged.keys).tobytes() == np.concatenate(plain_merged.keys).tobytes()
    assert np.concatenate(merged.ids).tolist() == np.concatenate(plain_merged.ids).tolist()
    work.close()


@pytest.mark.parametrize("words", [1, 2])
def test_parked_sorted_keys_read_back_in_slices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, words: int) -> None:
    """A level's candidate keys parked compressed give back every slice a merge asks for."""
    monkeypatch.setattr(spill, "PARKED_BLOCK", 64)
    rng = np.random.default_rng(3)
    keys = _keys(rng, 1000, words, 40)
    work = spill.WorkDir(tmp_path)
    parked = spill.Parked(work)
    parked.put("k", keys, sorted_keys=True)
    parked.put("p", np.arange(keys.shape[0], dtype=np.uint32))
    parked.spill()
    assert parked.memory_bytes == 0
    for a, b in [(0, 1), (0, 64), (63, 65), (100, 900), (990, 2000), (500, 500)]:
        assert parked.get("k", a, b).tobytes() == keys[a:b].tobytes()
    assert parked.pop("k").tobytes() == keys.tobytes() and parked.pop("p").tolist() == list(range(keys.shape[0]))
    work.close()


@pytest.mark.skipif(levelc.loaded() is None, reason="no C compiler")
@pytest.mark.parametrize("words,spread,n", [(1, 20, 1), (1, 40, 7), (1, 63, 5000), (2, 12, 3), (2, 50, 4096),
                                            (2, 63, 20_000), (3, 60, 300)])
def test_the_c_codec_writes_and_reads_the_numpy_codecs_bytes(monkeypatch: pytest.MonkeyPatch, words: int,
                                                             spread: int, n: int) -> None:
    """Blocks encoded in C are byte for byte numpy's (a block stays readable whichever wrote
    it: checkpoints move between machines), and each decoder reads the other's."""
    rng = np.random.default_rng(spread + n)
    if words == 3:
        rows = rng.integers(0, 1 << spread, (n, 3), dtype=np.uint64)
        keys = np.unique(np.ascontiguousarray(rows.astype(">u8")).view(np.dtype("V24")).ravel())
    else:
        keys = _keys(rng, n, words, spread)
    in_c = runcodec.encode(keys)
    from_c = runcodec.decode(in_c, keys.dtype)
    monkeypatch.setattr(runcodec, "_LITTLE", False)  # the numpy codec
    in_numpy = runcodec.encode(keys)
    assert in_c.tobytes() == in_numpy.tobytes()
    assert np.array_equal(runcodec.decode(in_c, keys.dtype), keys) and np.array_equal(from_c, keys)

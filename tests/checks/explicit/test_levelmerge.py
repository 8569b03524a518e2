"""The key-range merge of a level's chunk candidates equals one merge of them all (one-, two- and
three-word keys, chunks that miss pieces, ties won by the earliest chunk)."""

from __future__ import annotations

import numpy as np
import pytest

from deferral.checks.explicit import levelmerge


def _keys(words: np.ndarray) -> np.ndarray:
    """Sortable keys of (n, w) uint64 words: uint64 for one word, else big-endian void words."""
    if words.shape[1] == 1:
        return words[:, 0].copy()
    return np.ascontiguousarray(words.astype(">u8")).view(f"V{8 * words.shape[1]}")[:, 0]


@pytest.mark.parametrize("n_words", [1, 2, 3])  # 3: numpy's merge (no C for void keys of 3 words)
@pytest.mark.parametrize("piece,sample", [(40, 4), (7, 1), (1 << 17, 64)])
def test_pieces_equal_one_merge(n_words: int, piece: int, sample: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(levelmerge, "SAMPLE", sample)
    rng = np.random.default_rng(n_words * 100 + piece)
    pool = _keys(rng.integers(0, 50, size=(400, n_words), dtype=np.uint64) << np.uint64(40))
    chunks = []
    for c in range(9):
        size = 0 if c == 4 else int(rng.integers(1, 150))
        keys = np.unique(pool[rng.integers(0, pool.shape[0], size)])  # sorted, unique in the chunk
        chunks.append((keys, rng.integers(0, 1 << 20, keys.shape[0]).astype(np.uint32),
                       rng.integers(0, 200, keys.shape[0]).astype(np.uint8)))
    sizes = [k.shape[0] for k, _, _ in chunks]
    samples = [levelmerge.sample(k) for k, _, _ in chunks]
    got = list(levelmerge.pieces(sizes, samples, lambda i, a, b: tuple(x[a:b] for x in chunks[i]), piece))
    keys = np.concatenate([p.keys for p in got])
    # one merge: every key once, in order, with the parent and action of its earliest chunk
    first: dict[bytes, tuple[int, int]] = {}
    for i, (k, _, _) in enumerate(chunks):
        for j, key in enumerate(k.tolist()):
            first.setdefault(key, (i, j))
    want = sorted(first)
    assert keys.tolist() == want
    assert np.concatenate([p.parents for p in got]).tolist() == [int(chunks[i][1][j]) for i, j in map(first.get, want)]
    assert np.concatenate([p.actions for p in got]).tolist() == [int(chunks[i][2][j]) for i, j in map(first.get, want)]
    seen = [np.zeros(n, dtype=bool) for n in sizes]
    for p in got:  # each candidate of each chunk in exactly one slice, mapped to its key
        for i, a, b, group in p.slices:
            assert not seen[i][a:b].any()
            seen[i][a:b] = True
            assert p.keys[group].tolist() == chunks[i][0][a:b].tolist()
    assert all(s.all() for s in seen)
    if piece < 50:
        assert len(got) > 3


@pytest.mark.parametrize("n_words", [3, 4])
def test_distinct_first_of_keys_wider_than_the_c_kernel(n_words: int) -> None:
    """Keys of three or more words (4,3,3,3 has them) are void keys the C kernel does not take:
    numpy's not_equal ufunc has no loop for those (check crashed there before)."""
    rng = np.random.default_rng(1)
    words = rng.integers(0, 3, size=(500, n_words), dtype=np.uint64)
    keys = np.ascontiguousarray(words).view(f"V{8 * n_words}").ravel()
    distinct, first, group = levelmerge.distinct_first(keys, want_group=True)
    rows = [tuple(r) for r in words]
    expect = sorted(set(rows), key=lambda r: keys[rows.index(r)].tobytes())
    assert [tuple(np.frombuffer(k.tobytes(), np.uint64)) for k in distinct] == expect
    assert [rows[i] for i in first] == expect and list(first) == [rows.index(r) for r in expect]
    assert group is not None and all(rows[i] == expect[g] for i, g in enumerate(group))

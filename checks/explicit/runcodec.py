"""Sorted keys as compact bytes: a block of a visited run stored as deltas (for the disk spill).

A block of sorted, unique keys (``uint64``, or big-endian ``void`` words, see
:mod:`deferral.checks.explicit.packing`) is seen as rows of ``uint64`` words. The first
(most significant) word never decreases along the block: it is cut into its low ``low``
bytes, kept as they are, and the rest, kept as the difference from the key before in one
byte (255 and an 8-byte exception when the difference does not fit), with ``low`` chosen
per block to make the block smallest. The other words are kept in as many bytes as the
block's largest value of each needs. At 3,2,1,2 (two words: the first holds all but a few
bits of the state) that is about 7 bytes a key instead of 16; at one word about 4 instead of 8.

A block is self-describing (a small header, then its sections), so it can be read back from
a file at an offset alone; :func:`decode` gives back exactly the keys :func:`encode` was given.
"""

from __future__ import annotations

import struct
import sys

import numpy as np

from deferral.checks.explicit import levelc

_LITTLE = sys.byteorder == "little"

#: n, words, low bytes, exceptions, first high part; then one width byte a word after the first.
_HEAD = struct.Struct("<IBBIQ")
_ESC = 255


def words_of(keys: np.ndarray) -> np.ndarray:
    """Keys as (n, words) ``uint64`` rows, most significant word first."""
    if keys.dtype == np.uint64:
        return keys.reshape(-1, 1)
    n_words = keys.dtype.itemsize // 8
    return np.ascontiguousarray(keys).view(">u8").reshape(-1, n_words).astype(np.uint64)


def keys_of(words: np.ndarray, key_dtype: np.dtype) -> np.ndarray:
    """The inverse of :func:`words_of`."""
    if key_dtype == np.uint64:
        return np.ascontiguousarray(words[:, 0])
    return np.ascontiguousarray(words.astype(">u8")).view(key_dtype).ravel()


def _byte_width(value: int) -> int:
    return (int(value).bit_length() + 7) // 8


def _high_deltas(first: np.ndarray, low: int) -> tuple[np.ndarray, np.ndarray]:
    """The differences of ``first >> 8 low`` (0 for the first key) and where they do not fit a byte."""
    high = first >> np.uint64(8 * low) if low < 8 else np.zeros_like(first)
    delta = np.empty_like(high)
    delta[0] = 0
    np.subtract(high[1:], high[:-1], out=delta[1:])
    return delta, delta >= _ESC


def encode(keys: np.ndarray) -> np.ndarray:
    """One block of sorted keys as bytes (``uint8``); in C when it is built here (the same bytes)."""
    n_words = keys.dtype.itemsize // 8
    lib = levelc.loaded() if _LITTLE and keys.shape[0] and n_words <= 64 else None
    if lib is not None and (keys.dtype == np.uint64 or (keys.dtype.kind == "V" and keys.dtype.fields is None
                                                        and keys.dtype.itemsize % 8 == 0)):
        keys = np.ascontiguousarray(keys)
        out = np.empty(keys.shape[0] * (9 + 8 * n_words) + n_words + 40, dtype=np.uint8)
        used = lib.encode_block(keys.ctypes.data, keys.shape[0], n_words, out.ctypes.data)
        return out[:used]
    words = words_of(keys)
    n, n_words = words.shape
    first = np.ascontiguousarray(words[:, 0])
    best = None
    for low in range(9):  # the smallest block over the number of low bytes kept as they are
        _, esc = _high_deltas(first, low)
        size = n * (low + 1) + 8 * int(esc.sum())
        if best is None or size < best[0]:
            best = (size, low)
    assert best is not None
    low = best[1]
    delta, esc = _high_deltas(first, low)
    exceptions = delta[esc]
    small = delta.astype(np.uint8)
    small[esc] = _ESC
    h0 = int(first[0] >> np.uint64(8 * low)) if low < 8 else 0
    widths = [_byte_width(int(words[:, j].max())) for j in range(1, n_words)]
    parts = [np.frombuffer(_HEAD.pack(n, n_words, low, exceptions.shape[0], h0), dtype=np.uint8),
             np.asarray(widths, dtype=np.uint8),
             _low_bytes(first, low), small, exceptions.astype("<u8").view(np.uint8)]
    parts += [_low_bytes(np.ascontiguousarray(words[:, j]), w) for j, w in zip(range(1, n_words), widths)]
    return np.concatenate(parts)


def _low_bytes(values: np.ndarray, width: int) -> np.ndarray:
    """The low ``width`` bytes of each ``uint64``, little-endian, as one flat byte array."""
    return np.ascontiguousarray(values.astype("<u8").view(np.uint8).reshape(-1, 8)[:, :width]).ravel()


def _from_low_bytes(raw: np.ndarray, n: int, width: int) -> np.ndarray:
    full = np.zeros((n, 8), dtype=np.uint8)
    full[:, :width] = raw.reshape(n, width)
    return full.view("<u8").ravel().astype(np.uint64)


def decode(block: np.ndarray, key_dtype: object) -> np.ndarray:
    """The keys of one block made by :func:`encode` (in C when it is built here: one pass,
    where numpy makes a dozen temporaries of the block)."""
    n, n_words, low, n_exc, h0 = _HEAD.unpack_from(block[:_HEAD.size].tobytes())
    key_dtype = np.dtype(key_dtype)
    lib = levelc.loaded() if _LITTLE else None
    if lib is not None and key_dtype.itemsize == 8 * n_words and (n_words == 1) == (key_dtype == np.uint64):
        block = np.ascontiguousarray(block, dtype=np.uint8)
        base = block.ctypes.data
        at = _HEAD.size + n_words - 1
        small = at + n * low
        exc = small + n
        out = np.empty(n, dtype=key_dtype)
        lib.decode_block(base + at, base + small, base + exc, n, low, h0, base + exc + 8 * n_exc,
                         base + _HEAD.size, n_words, out.ctypes.data, base + block.shape[0])
        return out
    at = _HEAD.size
    widths = block[at:at + n_words - 1].tolist()
    at += n_words - 1
    low_part = _from_low_bytes(block[at:at + n * low], n, low)
    at += n * low
    delta = block[at:at + n].astype(np.uint64)
    at += n
    if n_exc:
        delta[delta == _ESC] = np.frombuffer(block[at:at + 8 * n_exc].tobytes(), dtype="<u8")
        at += 8 * n_exc
    words = np.empty((n, n_words), dtype=np.uint64)
    high = np.cumsum(delta, dtype=np.uint64)
    high += np.uint64(h0)
    words[:, 0] = (high << np.uint64(8 * low)) | low_part if low < 8 else low_part
    for j, w in enumerate(widths, start=1):
        words[:, j] = _from_low_bytes(block[at:at + n * w], n, w)
        at += n * w
    return keys_of(words, np.dtype(key_dtype))

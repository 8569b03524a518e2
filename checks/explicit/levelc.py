"""The search's model-independent loops in compiled C, run without the GIL: the visited runs' merge, AG EF target numbering.

Merge: the numpy merge of :func:`deferral.checks.explicit.visited.merge_runs` places keys by
``searchsorted`` and scatters them (a binary search a key, two passes over the output, and a
copy of every block into the next); here one linear two-pointer pass writes each key and its
state number once, straight into the output block, in C compiled by
:mod:`deferral.checks.explicit.cbuild` (the same source for every model: built once per
machine) and called through ctypes, so the GIL is released while it runs. For ``uint64``
keys, or two-word (16-byte void) ones, with ``uint32`` state numbers; anything else (or no
compiler) keeps the numpy merge. The level merge's distinct keys with their first positions
(:func:`distinct_first`) are an LSD radix sort here, where numpy's stable argsort of void keys
compares them a byte at a time.

AG EF: the backward search from the goal states over the reversed edges' CSR (its offsets by
one pass over the sorted edges, then each frontier state's predecessors marked and queued),
where numpy needed a binary search a state for the offsets and gathers, repeats and a sort a
level; the same answer (the least state that cannot reach a goal does not depend on the
order states are reached in).

Numbering: after a level's merge, each chunk's AG EF edge targets that were new candidates
(``-(1 + candidate)``) become state numbers, in place, with no temporaries (the numpy
version holds a mask and a gathered copy of them per chunk, at the search's peak).
"""

from __future__ import annotations

import ctypes
import functools
from typing import Callable

import numpy as np

from deferral.checks.explicit import cbuild

SOURCE = r"""
#include <stdint.h>
#include <string.h>
/* A key of nw = 1 word (native uint64) or 2 (big-endian bytes: numpy void keys, see packing)
   as one integer, whose order is the keys' order. */
typedef unsigned __int128 wide_t;
static inline wide_t load_key(const uint64_t *p, int64_t i, int nw) {
  if (nw == 1) return p[i];
  return ((wide_t)__builtin_bswap64(p[2 * i]) << 64) | __builtin_bswap64(p[2 * i + 1]);
}

/* merge_step (below) for two-word keys: a, b, ok hold 2 words a key. */
void merge_step2(const uint64_t *a, const uint32_t *ai, int64_t na, const uint64_t *b, const uint32_t *bi,
                 int64_t nb, uint64_t *ok, uint32_t *oi, int64_t room, int64_t *used) {
  int64_t i = 0, j = 0, n = 0;
  while (n < room && i < na && j < nb) {
    if (load_key(a, i, 2) < load_key(b, j, 2)) { memcpy(ok + 2 * n, a + 2 * i, 16); oi[n] = ai[i]; i++; }
    else { memcpy(ok + 2 * n, b + 2 * j, 16); oi[n] = bi[j]; j++; }
    n++;
  }
  if (nb == 0) for (; n < room && i < na; i++, n++) { memcpy(ok + 2 * n, a + 2 * i, 16); oi[n] = ai[i]; }
  if (na == 0) for (; n < room && j < nb; j++, n++) { memcpy(ok + 2 * n, b + 2 * j, 16); oi[n] = bi[j]; }
  used[0] = i; used[1] = j;
}

/* The distinct keys[0..n) (nw words each) in key order into out (as they are), the first
   position of each in first (a stable sort: the earliest of equal keys), and (group not
   NULL) each position's index into the distinct keys; returns how many are distinct. An
   LSD radix sort (8-bit digits, those every key shares skipped) of (key, position);
   ka, kb: n keys of scratch, ia, ib: n entries. */
int64_t distinct_first(const uint64_t *keys, int64_t n, int nw, uint64_t *out, int64_t *first, int64_t *group,
                       wide_t *ka, wide_t *kb, int64_t *ia, int64_t *ib) {
  static const int digits = 16;
  uint32_t count[16 * 256];
  memset(count, 0, sizeof(count));
  for (int64_t x = 0; x < n; x++) {
    wide_t k = load_key(keys, x, nw);
    ka[x] = k; ia[x] = x;
    for (int g = 0; g < 8 * nw; g++) count[g * 256 + (unsigned)((k >> (8 * g)) & 255)]++;
  }
  for (int g = 0; g < 8 * nw && n > 0; g++) {
    uint32_t *c = count + g * 256;
    if (c[(unsigned)((ka[0] >> (8 * g)) & 255)] == (uint32_t)n) continue;
    uint32_t at = 0;
    for (int b = 0; b < 256; b++) { uint32_t m = c[b]; c[b] = at; at += m; }
    for (int64_t x = 0; x < n; x++) { uint32_t p = c[(unsigned)((ka[x] >> (8 * g)) & 255)]++; kb[p] = ka[x]; ib[p] = ia[x]; }
    wide_t *tk = ka; ka = kb; kb = tk;
    int64_t *ti = ia; ia = ib; ib = ti;
  }
  (void)digits;
  int64_t d = 0;
  for (int64_t x = 0; x < n; x++) {
    if (x == 0 || ka[x] != ka[x - 1]) {
      memcpy(out + d * nw, keys + ia[x] * nw, 8 * (size_t)nw);
      first[d] = ia[x];
      d++;
    }
    if (group) group[ia[x]] = d - 1;
  }
  return d;
}

/* Merge a[0..na) and b[0..nb) (sorted, disjoint keys, each with its id) into ok/oi until
   room entries are written or one of them is used up (both, where the other is empty: the
   rest of a run with nothing left to merge against is copied). used[0], used[1]: how many
   of a and of b went out. */
void merge_step(const uint64_t *a, const uint32_t *ai, int64_t na, const uint64_t *b, const uint32_t *bi,
                int64_t nb, uint64_t *ok, uint32_t *oi, int64_t room, int64_t *used) {
  int64_t i = 0, j = 0, n = 0;
  while (n < room && i < na && j < nb) {
    uint64_t x = a[i], y = b[j];
    if (x < y) { ok[n] = x; oi[n] = ai[i]; i++; } else { ok[n] = y; oi[n] = bi[j]; j++; }
    n++;
  }
  if (nb == 0) for (; n < room && i < na; i++, n++) { ok[n] = a[i]; oi[n] = ai[i]; }
  if (na == 0) for (; n < room && j < nb; j++, n++) { ok[n] = b[j]; oi[n] = bi[j]; }
  used[0] = i; used[1] = j;
}

/* The AG EF successors of a chunk's rows done with (see vectorized._drop_goal_sources): for
   each transition e (from row par[e] - lo) whose target code[uidx[e]] is a known state that is
   a goal of property g, hits[g * rows + row] = 1; a row is done when, for every property, it
   is a goal state (goals[g][base + lo + row]) or has such a hit (done[row] = 1). The
   transitions of rows not done are kept, moved to the front of uidx and par in order; returns
   how many (t when no row is done: nothing moved). */
int64_t drop_goal_sources(uint32_t *uidx, uint32_t *par, int64_t t, const void *code, int code64,
                          const uint8_t *const *goals, int ng, int64_t base, int64_t lo, int64_t rows,
                          uint8_t *hits, uint8_t *done) {
  const int64_t *c64 = (const int64_t *)code;
  const int32_t *c32 = (const int32_t *)code;
  memset(hits, 0, (size_t)(ng * rows));
  for (int64_t e = 0; e < t; e++) {
    int64_t d = code64 ? c64[uidx[e]] : (int64_t)c32[uidx[e]];
    if (d < 0) continue;
    int64_t r = (int64_t)par[e] - lo;
    for (int g = 0; g < ng; g++) if (goals[g][d]) hits[g * rows + r] = 1;
  }
  int any = 0;
  for (int64_t r = 0; r < rows; r++) {
    uint8_t all = 1;
    for (int g = 0; g < ng && all; g++) all = goals[g][base + lo + r] | hits[g * rows + r];
    done[r] = all;
    any |= all;
  }
  if (!any) return t;
  int64_t k = 0;
  for (int64_t e = 0; e < t; e++) {
    if (done[par[e] - lo]) continue;
    uidx[k] = uidx[e];
    par[k] = par[e];
    k++;
  }
  return k;
}

/* code[x] < 0 (a candidate: -(1 + its index in the chunk)) becomes state[-1 - code[x]], the
   state that candidate turned out to be (or -1: cut by --max-states). */
void number_codes(void *code, int64_t n, int code64, const void *state) {
  int64_t *c64 = (int64_t *)code;
  int32_t *c32 = (int32_t *)code;
  const int64_t *s64 = (const int64_t *)state;
  const int32_t *s32 = (const int32_t *)state;
  for (int64_t x = 0; x < n; x++) {
    if (code64) { if (c64[x] < 0) c64[x] = s64[-1 - c64[x]]; }
    else if (c32[x] < 0) c32[x] = s32[-1 - c32[x]];
  }
}

/* The edges (local[i], dst[i]) grouped by source, stable (a counting sort): out the targets
   in that order, deg[r] the out-degree of source r (rows of them); pos: rows of scratch. */
void group_by_source(const uint32_t *local, const uint32_t *dst, int64_t t, int64_t rows, int64_t *deg,
                     int64_t *pos, uint32_t *out) {
  memset(deg, 0, (size_t)rows * sizeof(int64_t));
  for (int64_t i = 0; i < t; i++) deg[local[i]]++;
  int64_t s = 0;
  for (int64_t r = 0; r < rows; r++) { pos[r] = s; s += deg[r]; }
  for (int64_t i = 0; i < t; i++) out[pos[local[i]]++] = dst[i];
}

/* starts[x] (x = 0..n): where target x's edges begin in packed (sorted target << 32 | source). */
void csr_starts(const uint64_t *packed, int64_t m, void *starts, int starts64, int64_t n) {
  uint32_t *s32 = (uint32_t *)starts;
  int64_t *s64 = (int64_t *)starts;
  int64_t x = 0;
  for (int64_t i = 0; i < m; i++) {
    int64_t t = (int64_t)(packed[i] >> 32);
    for (; x <= t && x <= n; x++) { if (starts64) s64[x] = i; else s32[x] = (uint32_t)i; }
  }
  for (; x <= n; x++) { if (starts64) s64[x] = m; else s32[x] = (uint32_t)m; }
}

/* A block of runcodec's format into keys (its header already read): n keys of nw words,
   written as the key type holds them (nw 1: native uint64; more: big-endian words). low: the
   first word's low bytes kept as they are (lowp, n * low bytes); the rest of it as one-byte
   differences (small; 255: the next 8-byte little-endian exception of exc) from h0; the other
   words' low widths[j - 1] bytes each, one word after the other, from rest; end: the block's end
   (little-endian loads of 8 bytes where they stay inside). */
static inline uint64_t low_bytes(const uint8_t *b, int w, const uint8_t *end) {
  uint64_t v = 0;
  if (w == 0) return 0;
  if (b + 8 <= end) { memcpy(&v, b, 8); return w == 8 ? v : v & ((1ULL << (8 * w)) - 1); }
  for (int k = 0; k < w; k++) v |= (uint64_t)b[k] << (8 * k);
  return v;
}

void decode_block(const uint8_t *lowp, const uint8_t *small, const uint8_t *exc, int64_t n, int low,
                  uint64_t h0, const uint8_t *rest, const uint8_t *widths, int nw, uint64_t *out,
                  const uint8_t *end) {
  uint64_t high = h0;
  for (int64_t i = 0; i < n; i++) {
    uint64_t d = small[i];
    if (d == 255) { memcpy(&d, exc, 8); exc += 8; }  /* little-endian, as on x86 and arm */
    high += d;
    uint64_t lo = low_bytes(lowp + i * low, low, end);
    uint64_t w0 = low < 8 ? (high << (8 * low)) | lo : lo;
    if (nw == 1) out[i] = w0; else out[(int64_t)i * nw] = __builtin_bswap64(w0);
  }
  for (int j = 1; j < nw; j++) {
    int w = widths[j - 1];
    for (int64_t i = 0; i < n; i++) {
      uint64_t v = low_bytes(rest + i * w, w, end);
      out[i * nw + j] = __builtin_bswap64(v);
    }
    rest += n * w;
  }
}

/* runcodec.encode in one pass a choice: the n sorted unique keys (nw words, as decode_block
   writes them) as one block of that format into out (room for n * (9 + 8 * nw) + nw + 40 bytes);
   returns its length. The first word's low bytes kept as they are: the number (0..8) making the
   block smallest, the smallest such on a tie, as the numpy encoder chooses. */
static inline uint64_t key_word(const uint64_t *k, int64_t i, int nw, int j) {
  return nw == 1 ? k[i] : __builtin_bswap64(k[i * nw + j]);
}
int64_t encode_block(const uint64_t *keys, int64_t n, int nw, uint8_t *out) {
  int64_t best_size = -1, escs[9] = {0};
  int low = 0;
  uint64_t prev0 = n ? key_word(keys, 0, nw, 0) : 0;
  for (int64_t i = 1; i < n; i++) {  /* the exceptions each choice would need, in one pass */
    uint64_t w = key_word(keys, i, nw, 0);
    for (int l = 0; l < 8; l++) escs[l] += ((w >> (8 * l)) - (prev0 >> (8 * l))) >= 255;
    prev0 = w;
  }
  for (int l = 0; l <= 8; l++) {
    int64_t size = n * (l + 1) + 8 * escs[l];
    if (best_size < 0 || size < best_size) { best_size = size; low = l; }
  }
  uint8_t widths[64];
  for (int j = 1; j < nw; j++) {
    uint64_t m = 0;
    for (int64_t i = 0; i < n; i++) m |= key_word(keys, i, nw, j);
    int w = 0;
    while (w < 8 && (m >> (8 * w))) w++;
    widths[j - 1] = (uint8_t)w;
  }
  uint32_t n32 = (uint32_t)n, n_exc = 0;
  uint64_t h0 = (n && low < 8) ? key_word(keys, 0, nw, 0) >> (8 * low) : 0;
  uint8_t *p = out + 18 + (nw - 1);
  /* 8-byte stores advanced by the width: out has room past the block's end for the last */
  for (int64_t i = 0; i < n; i++) { uint64_t v = key_word(keys, i, nw, 0); memcpy(p, &v, 8); p += low; }
  uint8_t *small = p;
  p += n;
  uint64_t prev = h0;
  for (int64_t i = 0; i < n; i++) {
    uint64_t h = low < 8 ? key_word(keys, i, nw, 0) >> (8 * low) : 0;
    uint64_t d = h - prev;
    prev = h;
    if (d >= 255) { small[i] = 255; memcpy(p, &d, 8); p += 8; n_exc++; } else small[i] = (uint8_t)d;
  }
  for (int j = 1; j < nw; j++) {
    int w = widths[j - 1];
    for (int64_t i = 0; i < n; i++) { uint64_t v = key_word(keys, i, nw, j); memcpy(p, &v, 8); p += w; }
  }
  uint8_t nwb = (uint8_t)nw, lowb = (uint8_t)low;
  memcpy(out, &n32, 4); memcpy(out + 4, &nwb, 1); memcpy(out + 5, &lowb, 1);
  memcpy(out + 6, &n_exc, 4); memcpy(out + 10, &h0, 8);
  memcpy(out + 18, widths, nw - 1);
  return p - out;
}

/* For each of the sorted queries q[0..nq) the position of an equal key in the sorted block
   b[0..nb) (nw 1 or 2 words, as load_key), or -1: one forward walk of both. */
void find_sorted(const uint64_t *b, int64_t nb, const uint64_t *q, int64_t nq, int nw, int64_t *pos) {
  int64_t j = 0;
  for (int64_t i = 0; i < nq; i++) {
    wide_t k = load_key(q, i, nw);
    while (j < nb && load_key(b, j, nw) < k) j++;
    pos[i] = (j < nb && load_key(b, j, nw) == k) ? j : -1;
  }
}

/* One step of the backward search: the predecessors of f[0..nf) not yet marked in can are
   marked and written to out (cap entries); stops before a state whose in-degree does not fit
   in what is left (the caller gives cap >= the largest in-degree). Returns how many were
   written; *done: how many frontier states were used. */
int64_t back_step(const uint32_t *f, int64_t nf, const void *starts, int starts64, const uint32_t *preds,
                  uint8_t *can, uint32_t *out, int64_t cap, int64_t *done) {
  const uint32_t *s32 = (const uint32_t *)starts;
  const int64_t *s64 = (const int64_t *)starts;
  int64_t n = 0, k = 0;
  for (; k < nf; k++) {
    int64_t x = f[k];
    int64_t a = starts64 ? s64[x] : (int64_t)s32[x], b = starts64 ? s64[x + 1] : (int64_t)s32[x + 1];
    if (n + (b - a) > cap) break;
    for (int64_t e = a; e < b; e++) {
      uint32_t p = preds[e];
      if (!can[p]) { can[p] = 1; out[n++] = p; }
    }
  }
  *done = k;
  return n;
}
"""


@functools.cache
def _lib() -> ctypes.CDLL | None:
    """The compiled library (built once per machine, loaded once per process), or None."""
    lib, _ = cbuild.load(SOURCE)
    if lib is None:
        return None
    p, i64 = ctypes.c_void_p, ctypes.c_int64
    lib.merge_step.restype = None
    lib.merge_step.argtypes = [p, p, i64, p, p, i64, p, p, i64, p]
    lib.merge_step2.restype = None
    lib.merge_step2.argtypes = [p, p, i64, p, p, i64, p, p, i64, p]
    lib.distinct_first.restype = i64
    lib.distinct_first.argtypes = [p, i64, ctypes.c_int, p, p, p, p, p, p, p]
    lib.drop_goal_sources.restype = i64
    lib.drop_goal_sources.argtypes = [p, p, i64, p, ctypes.c_int, p, ctypes.c_int, i64, i64, i64, p, p]
    lib.number_codes.restype = None
    lib.number_codes.argtypes = [p, i64, ctypes.c_int, p]
    lib.group_by_source.restype = None
    lib.group_by_source.argtypes = [p, p, i64, i64, p, p, p]
    lib.csr_starts.restype = None
    lib.csr_starts.argtypes = [p, i64, p, ctypes.c_int, i64]
    lib.back_step.restype = i64
    lib.back_step.argtypes = [p, i64, p, ctypes.c_int, p, p, p, i64, p]
    lib.decode_block.restype = None
    lib.decode_block.argtypes = [p, p, p, i64, ctypes.c_int, ctypes.c_uint64, p, p, ctypes.c_int, p, p]
    lib.encode_block.restype = i64
    lib.encode_block.argtypes = [p, i64, ctypes.c_int, p]
    lib.find_sorted.restype = None
    lib.find_sorted.argtypes = [p, i64, p, i64, ctypes.c_int, p]
    return lib


def loaded() -> ctypes.CDLL | None:
    """The library when C is on here (None: no compiler, switched off, or it failed to build)."""
    return None if cbuild.switched_off() else _lib()


def group_by_source(local: np.ndarray, dst: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The targets ``dst`` grouped by their source ``local`` (0..rows-1), stable, and each
    source's out-degree (int64): a stable argsort and a bincount in one linear pass; None: not here."""
    lib = loaded()
    if (lib is None or local.dtype != np.uint32 or dst.dtype != np.uint32 or local.shape != dst.shape
            or (local.shape[0] and int(local.max()) >= rows)):
        return None
    local, dst = np.ascontiguousarray(local), np.ascontiguousarray(dst)
    deg, pos = np.empty(max(rows, 0), np.int64), np.empty(max(rows, 1), np.int64)
    out = np.empty(dst.shape[0], np.uint32)
    lib.group_by_source(local.ctypes.data, dst.ctypes.data, local.shape[0], rows, deg.ctypes.data,
                        pos.ctypes.data, out.ctypes.data)
    return out, deg


def csr_starts(packed: np.ndarray, starts: np.ndarray) -> bool:
    """Fill ``starts`` (n + 1 entries, uint32 or int64) with where each target's edges begin in
    ``packed`` (sorted ``target << 32 | source``); False: not done (numpy's turn)."""
    lib = loaded()
    if lib is None or packed.dtype != np.uint64 or not packed.flags.c_contiguous or starts.dtype not in (
            np.uint32, np.int64) or not starts.flags.c_contiguous:
        return False
    lib.csr_starts(packed.ctypes.data, packed.shape[0], starts.ctypes.data, int(starts.dtype == np.int64),
                   starts.shape[0] - 1)
    return True


def backward(frontier: np.ndarray, starts: np.ndarray, preds: np.ndarray, can: np.ndarray,
             poll: Callable[[], None] | None = None, budget: int = 1 << 20) -> bool:
    """Mark in ``can`` (bool) every state with a path to a state of ``frontier`` (uint32,
    marked already) over the reversed edges' CSR (``starts``, ``preds``); False: not done.
    ``poll`` runs between bounded pieces of work."""
    lib = loaded()
    if (lib is None or frontier.dtype != np.uint32 or preds.dtype != np.uint32 or not preds.flags.c_contiguous
            or starts.dtype not in (np.uint32, np.int64) or not starts.flags.c_contiguous
            or can.dtype != np.bool_ or not can.flags.c_contiguous):
        return False
    widest = 0
    for a in range(0, starts.shape[0] - 1, 1 << 16):  # the largest in-degree, in bounded slices
        piece = starts[a:a + (1 << 16) + 1].astype(np.int64)
        widest = max(widest, int(np.diff(piece).max(initial=0)))
    cap = max(budget, widest)
    done = np.zeros(1, dtype=np.int64)
    s64 = int(starts.dtype == np.int64)
    while frontier.shape[0]:
        found: list[np.ndarray] = []
        k = 0
        while k < frontier.shape[0]:
            if poll is not None:
                poll()
            out = np.empty(cap, dtype=np.uint32)
            part = np.ascontiguousarray(frontier[k:])
            n = lib.back_step(part.ctypes.data, part.shape[0], starts.ctypes.data, s64, preds.ctypes.data,
                              can.ctypes.data, out.ctypes.data, cap, done.ctypes.data)
            k += int(done[0])
            if n:
                found.append(out[:n].copy())
            del out
        frontier = np.concatenate(found) if found else np.zeros(0, np.uint32)
    return True


def _merge_step(width: int) -> "ctypes._CFuncPtr | None":
    lib = _lib()
    return None if lib is None else lib.merge_step if width == 8 else lib.merge_step2


def _words(dtype: object) -> int:
    """Key words of a key type the C here takes (uint64, or 16-byte void keys), else 0."""
    dt = np.dtype(dtype)  # type: ignore[call-overload]
    return 1 if dt == np.uint64 else 2 if dt.kind == "V" and dt.itemsize == 16 and dt.fields is None else 0


def distinct_first(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The distinct ``keys`` in key order, the first position of each (int64) and each
    position's index into the distinct keys (int64), as a stable sort gives them; None: not
    here (no compiler, or a key type the C does not take)."""
    lib, nw = loaded(), _words(keys.dtype)
    if lib is None or nw == 0:
        return None
    keys = np.ascontiguousarray(keys)
    n = keys.shape[0]
    out = np.empty(n, dtype=keys.dtype)
    first = np.empty(n, dtype=np.int64)
    group = np.empty(n, dtype=np.int64)
    ka, kb = np.empty(2 * max(n, 1), np.uint64), np.empty(2 * max(n, 1), np.uint64)
    ia, ib = np.empty(max(n, 1), np.int64), np.empty(max(n, 1), np.int64)
    d = lib.distinct_first(keys.ctypes.data, n, nw, out.ctypes.data, first.ctypes.data, group.ctypes.data,
                           ka.ctypes.data, kb.ctypes.data, ia.ctypes.data, ib.ctypes.data)
    return out[:d].copy(), first[:d].copy(), group


def drop_goal_sources(uidx: np.ndarray, parents: np.ndarray, code: np.ndarray, goals: list[np.ndarray],
                      base: int, lo: int, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A chunk's AG EF transitions (``uidx``: each one's distinct key, ``parents``: its
    level-local row; ``code``: per distinct key its state number, or negative: a candidate)
    with those out of rows done with dropped, and the goal hits per property and row: what
    ``vectorized._drop_goal_sources`` computes, in one pass and no temporaries of a transition
    (see the C above; ``uidx`` and ``parents`` are overwritten). None: not done here."""
    lib = loaded()
    if (lib is None or uidx.dtype != np.uint32 or parents.dtype != np.uint32 or code.dtype not in (np.int32, np.int64)
            or uidx.shape != parents.shape or not uidx.flags.c_contiguous or not parents.flags.c_contiguous
            or not uidx.flags.writeable or not parents.flags.writeable or not code.flags.c_contiguous
            or any(g.dtype != np.bool_ or not g.flags.c_contiguous for g in goals)):
        return None
    t = uidx.shape[0]
    ptrs = (ctypes.c_void_p * max(1, len(goals)))(*[g.ctypes.data for g in goals])
    hits = np.empty((len(goals), rows), dtype=np.bool_)
    done = np.empty(max(1, rows), dtype=np.uint8)
    k = lib.drop_goal_sources(uidx.ctypes.data, parents.ctypes.data, t, code.ctypes.data,
                              int(code.dtype == np.int64), ptrs, len(goals), base, lo, rows,
                              hits.ctypes.data, done.ctypes.data)
    if k == t:
        return uidx, parents, hits
    return uidx[:k].copy(), parents[:k].copy(), hits


def number_codes(code: np.ndarray, state: np.ndarray) -> bool:
    """``code[x] = state[-1 - code[x]]`` where ``code[x] < 0``, in place (see the C above);
    False: not done here (no compiler, or types it does not take), numpy's turn."""
    lib = loaded()
    if (lib is None or code.dtype not in (np.int32, np.int64) or state.dtype != code.dtype
            or not code.flags.c_contiguous or not state.flags.c_contiguous):
        return False
    lib.number_codes(code.ctypes.data, code.shape[0], int(code.dtype == np.int64), state.ctypes.data)
    return True


def available(keys_dtype: object, ids_dtype: object) -> bool:
    """Whether runs of these key and id types merge in C here."""
    return (_words(keys_dtype) > 0 and np.dtype(ids_dtype) == np.uint32  # type: ignore[call-overload]
            and loaded() is not None)


_EMPTY_I = np.zeros(0, dtype=np.uint32)


def merge_blocks(a_keys: list[np.ndarray], a_ids: list[np.ndarray], b_keys: list[np.ndarray],
                 b_ids: list[np.ndarray], step: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The merge of two runs given as blocks (the lists are emptied: each input block is
    dropped once used up) as blocks of ``step`` keys (the last one shorter)."""
    kdt = (a_keys or b_keys)[0].dtype
    width = kdt.itemsize
    fn = _merge_step(width)
    assert fn is not None
    total = sum(k.shape[0] for k in a_keys) + sum(k.shape[0] for k in b_keys)
    qa, qb = list(zip(a_keys, a_ids))[::-1], list(zip(b_keys, b_ids))[::-1]  # popped from the end
    a_keys.clear(), a_ids.clear(), b_keys.clear(), b_ids.clear()
    empty = np.zeros(0, dtype=kdt)
    ak, ai, bk, bi = empty, _EMPTY_I, empty, _EMPTY_I
    pa = pb = 0
    used = np.zeros(2, dtype=np.int64)
    out_k: list[np.ndarray] = []
    out_i: list[np.ndarray] = []
    left = total
    while left:
        size = min(step, left)
        ok = np.empty(size, dtype=kdt)
        oi = np.empty(size, dtype=np.uint32)
        fill = 0
        while fill < size:
            if pa == ak.shape[0] and qa:
                (ak, ai), pa = qa.pop(), 0
                ak, ai = np.ascontiguousarray(ak), np.ascontiguousarray(ai)
            if pb == bk.shape[0] and qb:
                (bk, bi), pb = qb.pop(), 0
                bk, bi = np.ascontiguousarray(bk), np.ascontiguousarray(bi)
            fn(ak.ctypes.data + width * pa, ai.ctypes.data + 4 * pa, ak.shape[0] - pa,
               bk.ctypes.data + width * pb, bi.ctypes.data + 4 * pb, bk.shape[0] - pb,
               ok.ctypes.data + width * fill, oi.ctypes.data + 4 * fill, size - fill, used.ctypes.data)
            da, db = int(used[0]), int(used[1])
            pa, pb, fill = pa + da, pb + db, fill + da + db
            if da + db == 0:
                raise AssertionError("merge_step made no progress")
        out_k.append(ok)
        out_i.append(oi)
        left -= size
    return out_k, out_i


def find_sorted(block: np.ndarray, queries: np.ndarray) -> np.ndarray | None:
    """For each of the sorted ``queries`` the position of the equal key in the sorted unique
    ``block`` (int64), or -1; None: not here (no compiler, or a key type the C does not take)."""
    lib, nw = loaded(), _words(block.dtype)
    if lib is None or nw == 0 or queries.dtype != block.dtype:
        return None
    block, queries = np.ascontiguousarray(block), np.ascontiguousarray(queries)
    pos = np.empty(queries.shape[0], dtype=np.int64)
    lib.find_sorted(block.ctypes.data, block.shape[0], queries.ctypes.data, queries.shape[0], nw, pos.ctypes.data)
    return pos

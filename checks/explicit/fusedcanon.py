"""The fused loop's canonical key for many VCPU permutations (5 and 6 VCPUs): C that visits each distinct image that may be least once.

The key of a state is its least image under every VCPU permutation (the keys of
:mod:`deferral.checks.explicit.packing`, exactly). With up to 24 permutations
:func:`deferral.checks.explicit.fused.canonical_code` stages all of them; with 120 or 720,
the C here visits only some of them, yet always one whose image is least:

* **Signatures.** A VCPU's signature is its own slots at the start of the layout (see
  :meth:`~deferral.checks.explicit.packing.Packer._canonical_block`; here as many as a uint64
  holds, not the 2**24 of numpy's float32 products, see :data:`SIG_LIMIT`); the least image lists
  the VCPUs in non-decreasing signature order, so only the orders that sort the signatures
  (those that differ among VCPUs of equal signature) are visited.
* **Swaps that fix the state.** Among VCPUs of equal signature, those whose swap maps the
  state to itself (idle VCPUs, alike in every variable, the VCPU-to-VCPU ones included) are
  interchangeable: if swapping a and b fixes S, the order that puts a where b was (and b where
  a was) has the same image. So such VCPUs form classes (swaps that fix S compose:
  (a c) = (a b)(b c)(a b)), and the orders visited are the distinct arrangements of the
  classes, each class's members placed in VCPU order. Every image of an order that sorts the
  signatures is the image of one visited order, so the least of them is the least image.
* **Shared prefix.** Every visited image has the same leading slots (those no permutation
  moves, then the sorted signatures): images are compared from the first slot after them.

The comparisons, the signatures and the packing of the least image are straight-line C
with the slot numbers and radixes as constants; the permutations are rows of the tables
``SRC``/``REMAP``/``RENAME`` of :class:`~deferral.checks.explicit.packing._JitPlan`.
"""

from __future__ import annotations

import math

import numpy as np

from deferral.checks.explicit.packing import Packer, _JitPlan, _signature_plan


#: The compiled key's signatures are uint64: longer than numpy's (float32, below 2**24). At
#: 6,3,3,3 with three spaces numpy's takes 11 of a VCPU's 20 slots, on which the states of the
#: first levels tie on every VCPU (720 orders fit each): 7.3 us a key.
SIG_LIMIT = 1 << 63


def c_signature(packer: Packer) -> tuple[np.ndarray, np.ndarray]:
    """The signature slots ((N, L)) and radixes (L,) of the compiled key: :func:`_signature_plan`'s
    up to :data:`SIG_LIMIT` (only where the packer has a signature)."""
    slots, radix = _signature_plan(packer.layout, SIG_LIMIT)
    assert slots is not None and radix is not None and packer.sig_slots is not None
    return slots, radix


def uses_signature(packer: Packer, plan: _JitPlan) -> bool:
    """Whether the orders visited are those that sort the VCPUs' signatures (else every permutation)."""
    n = plan.n
    return packer.sig_slots is not None and plan.src.shape[0] == math.factorial(n) and n > 1


def _shared_prefix(packer: Packer, plan: _JitPlan, signature: bool) -> int:
    """How many leading slots every visited image shares."""
    n_slots = packer.n_slots
    shared = (plan.src == np.arange(n_slots)).all(axis=0) & ~plan.remap.any(axis=0)
    if signature:
        shared[c_signature(packer)[0].ravel()] = True
    return n_slots if shared.all() else int(np.argmin(shared))


Table = tuple[str, str, "list[int] | np.ndarray"]


def tables(packer: Packer, plan: _JitPlan) -> tuple[list[str], list[Table]]:
    """The C constants of :func:`code`, as defines and (name, C type, values) tables: ``NSIG`` (0: every permutation is visited), ``NV``,
    ``PIDX`` (an order, as the base-N number of the permutation it stands for: that
    permutation's row of the tables), and per pair a < b of VCPUs (q = a * N + b) the
    permutation row ``SWAPP[q]`` of their swap and, in ``SWJ/SWK/SWR[SWOFF[q]:SWOFF[q + 1]]``,
    what the swap fixing S asks: S[j] == S[k], renamed by the swap where SWR (one check per
    pair of slots the swap exchanges, none for signature slots: equal in VCPUs that tie)."""
    n, n_slots = plan.n, packer.n_slots
    if not uses_signature(packer, plan):
        return ["#define NSIG 0", "#define NV 1"], []
    pidx = np.full(n ** n, -1, dtype=np.int64)
    for p, perm in enumerate(packer.perms):
        pidx[sum(int(perm[i]) * n ** i for i in range(n))] = p
    in_sig = np.zeros(n_slots, dtype=bool)
    in_sig[c_signature(packer)[0].ravel()] = True
    swapp, swoff, swj, swk, swr = [0] * (n * n), [0], [], [], []
    for q in range(n * n):
        a, b = divmod(q, n)
        if a < b:
            perm = list(range(n))
            perm[a], perm[b] = b, a
            p = packer.perms.index(tuple(perm))
            swapp[q] = p
            for j in range(n_slots):
                k = int(plan.src[p, j])  # a swap exchanges slots j and k (k == j: stays)
                if in_sig[j] or k > j or (k == j and not plan.remap[p, j]):
                    continue
                swj.append(j)
                swk.append(k)
                swr.append(int(plan.remap[p, j]))
        swoff.append(len(swj))
    return ([f"#define NSIG {c_signature(packer)[0].shape[1]}", f"#define NV {n}"],
            [("PIDX", "int32_t", pidx), ("SWAPP", "int32_t", swapp), ("SWOFF", "int32_t", swoff),
             ("SWJ", "int32_t", swj), ("SWK", "int32_t", swk), ("SWR", "uint8_t", swr)])


def _value(plan: _JitPlan, j: int, src: str, rename: str, perm: str) -> str:
    """The C of image slot j's value under the permutation whose rows are ``src``/``rename``."""
    x = f"S[{src}[{j}]]"
    if plan.remap[:, j].all():
        return f"{rename}[{x}]"
    if plan.remap[:, j].any():
        return f"(REMAP[{perm} * NS + {j}] ? {rename}[{x}] : {x})"
    return x


def code(packer: Packer, plan: _JitPlan) -> str:
    """The C of ``canonical(S, out)`` (with the constants of :func:`tables` and ``SRC``,
    ``REMAP``, ``RENAME``, ``NS``, ``RW`` defined before it)."""
    signature = uses_signature(packer, plan)
    skip = _shared_prefix(packer, plan, signature)
    sizes = packer.layout.sizes
    less = ["  int v, b;"]
    for j in range(skip, packer.n_slots):
        less.append(f"  v = {_value(plan, j, 'sp', 'rp', 'p')}; b = {_value(plan, j, 'sb', 'rb', 'best')};"
                    " if (v != b) return v < b;")
    sig = []
    if signature:
        sig_slots, sig_radix = c_signature(packer)
        radix = [int(r) for r in sig_radix]
        for i, slots in enumerate(sig_slots.tolist()):
            terms = [f"(uint64_t)S[{s}] * {r}ULL" if r != 1 else f"(uint64_t)S[{s}]" for s, r in zip(slots, radix)]
            sig.append(f"  sig[{i}] = {' + '.join(terms)};")
    pack_same, pack_best = [], []
    starts = [int(x) for x in plan.word_start]
    for w in range(len(starts) - 1):
        same, best = "0", "0"
        for j in range(starts[w], starts[w + 1]):
            same = f"({same}) * {int(sizes[j])}u + S[{j}]" if same != "0" else f"(uint64_t)S[{j}]"
            x = _value(plan, j, "sb", "rb", "best")
            best = f"({best}) * {int(sizes[j])}u + {x}" if best != "0" else f"(uint64_t){x}"
        pack_same.append(f"    out[{w}] = {same};")
        pack_best.append(f"    out[{w}] = {best};")
    return (_CANONICAL.replace("/*LESS*/", "\n".join(less)).replace("/*SIG*/", "\n".join(sig))
            .replace("/*PACK_SAME*/", "\n".join(pack_same)).replace("/*PACK_BEST*/", "\n".join(pack_best)))


_CANONICAL = r"""
/* whether the image of S under permutation p (a row of the tables) is less than under best
   (from the first slot after those every visited image shares) */
static inline int less_image(const row_t *S, int p, int best) {
  const int32_t *sp = SRC + p * NS, *sb = SRC + best * NS;
  const row_t *rp = RENAME + p * RW, *rb = RENAME + best * RW;
  (void)rp; (void)rb;
/*LESS*/
  return 0;
}

#if NSIG > 0
/* the next arrangement of a[0..n) in lexicographic order (of equal values, each distinct
   arrangement once); 0 (and a sorted again) after the last */
static inline int next_arrangement(int *a, int n) {
  int i = n - 2;
  while (i >= 0 && a[i] >= a[i + 1]) i--;
  int lo = i + 1, hi = n - 1;
  if (i >= 0) {
    int j = n - 1;
    while (a[j] <= a[i]) j--;
    int t = a[i]; a[i] = a[j]; a[j] = t;
  }
  for (; lo < hi; lo++, hi--) { int t = a[lo]; a[lo] = a[hi]; a[hi] = t; }
  return i >= 0;
}

/* whether swapping VCPUs a < b (of equal signature) maps S to itself */
static inline int swap_fixes(const row_t *S, int a, int b) {
  int q = a * NV + b;
  const row_t *rn = RENAME + SWAPP[q] * RW;
  for (int t = SWOFF[q]; t < SWOFF[q + 1]; t++) {
    int v = S[SWK[t]];
    if (SWR[t]) v = rn[v];
    if (v != S[SWJ[t]]) return 0;
  }
  return 1;
}
#endif

static void canonical(const row_t *S, uint64_t *out) {
  int best = 0;
#if NSIG > 0
  uint64_t sig[NV];
  int ord[NV], group[NV + 1], n_group = 0;
/*SIG*/
  for (int i = 0; i < NV; i++) {  /* insertion sort by signature; equal signatures keep VCPU order */
    int k = i;
    while (k > 0 && sig[ord[k - 1]] > sig[i]) { ord[k] = ord[k - 1]; k--; }
    ord[k] = i;
  }
  for (int j = 0; j < NV; j++) if (j == 0 || sig[ord[j]] != sig[ord[j - 1]]) group[n_group++] = j;
  group[n_group] = NV;
  /* each group of equal signature in classes of VCPUs whose swaps fix S (each VCPU tried
     against each class's first member). mem: the group's VCPUs class by class, VCPU order
     within a class; start[a + x]: where class x of the group at a starts in mem; lab[j]: the
     class of the VCPU at position j. The orders visited: the distinct arrangements of lab in
     each group (sorted first), a class's members placed in VCPU order. */
  int lab[NV], mem[NV], start[NV], multi = 0;
  for (int g = 0; g < n_group; g++) {
    int a = group[g], n = group[g + 1] - a, k = 0;
    if (n == 1) { lab[a] = 0; mem[a] = ord[a]; start[a] = a; continue; }
    int c[NV], rep[NV];
    for (int j = 0; j < n; j++) {
      int v = ord[a + j], x = 0;
      while (x < k && !swap_fixes(S, rep[x], v)) x++;
      if (x == k) rep[k++] = v;
      c[j] = x;
    }
    multi |= k > 1;
    int at = a;  /* a stable counting sort by class */
    for (int x = 0; x < k; x++) {
      start[a + x] = at;
      for (int j = 0; j < n; j++) if (c[j] == x) { lab[at] = x; mem[at] = ord[a + j]; at++; }
    }
  }
  best = -1;
  for (;;) {
    int code = 0, place = 1;  /* the permutation taking the VCPU at j to j, as sum perm[i] * NV^i */
    int pos[NV], next[NV];
    for (int g = 0; g < n_group; g++) {
      int a = group[g], n = group[g + 1] - a;
      if (n == 1) { pos[mem[a]] = a; continue; }
      for (int x = 0; x < n; x++) next[x] = start[a + x];
      for (int j = a; j < a + n; j++) pos[mem[next[lab[j]]++]] = j;
    }
    for (int i = 0; i < NV; i++) { code += pos[i] * place; place *= NV; }
    int p = PIDX[code];
    if (best < 0 || less_image(S, p, best)) best = p;
    if (!multi) break;
    int g = n_group - 1;  /* the next order: an odometer over the groups of equal signature */
    while (g >= 0 && !next_arrangement(lab + group[g], group[g + 1] - group[g])) g--;
    if (g < 0) break;
  }
#else
  for (int p = 1; p < NP; p++) if (less_image(S, p, best)) best = p;
#endif
  if (best == 0) {
/*PACK_SAME*/
  } else {
    const int32_t *sb = SRC + best * NS;
    const row_t *rb = RENAME + best * RW;
    (void)rb;
/*PACK_BEST*/
  }
}
"""

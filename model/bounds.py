"""Model bounds: the declared bounds of a protocol and one choice of their values.

A protocol declares its bounds once, as :class:`Bound` records (name, CLI flag, letter
used in step functions, range, default). :class:`Bounds` is an immutable mapping from
those names to values; everything that shows, parses or iterates bounds (the CLI flags
and ``--help``, the JSON ``bounds`` object, traces, ``regress --bounds``) reads the
declarations. Attribute access keeps working: ``b.vcpus`` and ``b.N`` are ``b["vcpus"]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence


class BoundsError(ValueError):
    """A bound outside its declared range, or a bound the protocol does not declare."""


@dataclass(frozen=True)
class Bound:
    """One declared bound: ``name`` (``--name`` on the command line), its ``letter`` in step
    functions (``s.N``), the range ``low..high`` and ``default``.

    ``always_shown``: written in every bounds object (JSON, traces, ``short()``). A bound
    that is not always shown is written only when it differs from its default, so files
    written before it was declared stay the same and still read (missing means default).
    """

    name: str
    letter: str
    low: int
    high: int
    default: int
    doc: str = ""
    always_shown: bool = True

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name.startswith("_"):
            raise ValueError(f"bound name {self.name!r} must be a plain identifier")
        if not self.low <= self.default <= self.high:
            raise ValueError(f"bound {self.name}: default {self.default} outside {self.low}..{self.high}")

    @property
    def flag(self) -> str:
        return f"--{self.name.replace('_', '-')}"

    def check(self, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not self.low <= value <= self.high:
            raise BoundsError(f"{self.flag} must be an integer from {self.low} to {self.high}, got {value!r}")
        return value


#: The bounds of the reference protocol (PROTOCOL.md, "Bounds"), in their fixed order.
VCPUS = Bound("vcpus", "N", 1, 6, 2, "VCPUs, numbered 0..N-1")
PAGES = Bound("pages", "V", 1, 3, 1, "virtual pages, numbered 0..V-1")
FRAMES = Bound("frames", "F", 1, 3, 1, "frames: a PTE value is 0 (not present) or 1..F")
QUEUE = Bound("queue", "Q", 1, 3, 1, "deferral queue capacity per VCPU")
STANDARD: tuple[Bound, ...] = (VCPUS, PAGES, FRAMES, QUEUE)
#: Address spaces (PROTOCOL.md, "Address spaces"): shown only when not 1, so files written
#: before spaces existed stay the same and read as one space.
SPACES = Bound("spaces", "S", 1, 3, 1, "guest address spaces (processes), numbered 0..S-1",
               always_shown=False)
#: The reference's bounds: the four, then the spaces.
DEFAULT: tuple[Bound, ...] = STANDARD + (SPACES,)

#: name -> (flag, low, high) of the standard bounds (kept for code written against it).
LIMITS: dict[str, tuple[str, int, int]] = {b.name: (b.flag, b.low, b.high) for b in STANDARD}


class Bounds(Mapping[str, int]):
    """Values of declared bounds: ``Bounds(2, 1, 1, 1)`` (declaration order), or by name.

    ``decls`` defaults to :data:`DEFAULT` (the reference's); a protocol with other bounds passes its own
    (``protocol.bounds(...)`` does). Missing values take their default; an unknown name or
    a value outside its range is a :class:`BoundsError`. Two bounds are equal when they
    show the same (``as_dict``), so ``Bounds(2, 1, 1, 1)`` equals the reference's bounds
    at those values, whatever bounds the reference declares beyond the four.
    """

    __slots__ = ("_decls", "_values")

    def __init__(self, *args: int, decls: Sequence[Bound] | None = None, **values: int) -> None:
        decls = DEFAULT if decls is None else decls
        decls = tuple(decls)
        if len(args) > len(decls):
            names = ",".join(d.letter for d in decls)
            raise BoundsError(f"too many bounds: {len(args)} given, the protocol declares {len(decls)} ({names})")
        known = {d.name for d in decls}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BoundsError(f"unknown bound(s) {', '.join(unknown)}; this protocol declares "
                              f"{', '.join(d.name for d in decls)}")
        given = dict(zip((d.name for d in decls), args))
        for name, value in values.items():
            if name in given:
                raise BoundsError(f"bound {name} given twice")
            given[name] = value
        object.__setattr__(self, "_decls", decls)
        object.__setattr__(self, "_values", {d.name: d.check(given.get(d.name, d.default)) for d in decls})

    # ---- mapping -------------------------------------------------------------------
    def __getitem__(self, name: str) -> int:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> int:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        for d in object.__getattribute__(self, "_decls"):
            if d.letter == name:
                return values[d.name]
        raise AttributeError(f"no bound named {name!r} (declared: {', '.join(values)})")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Bounds are immutable; use replace(...)")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Bounds):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.as_dict().items())))

    def __lt__(self, other: "Bounds") -> bool:
        return tuple(self._values.values()) < tuple(other._values.values())

    def __repr__(self) -> str:
        return f"Bounds({', '.join(f'{k}={v}' for k, v in self._values.items())})"

    def __reduce__(self) -> Any:  # picklable for worker processes
        return (_rebuild, (self._decls, dict(self._values)))

    # ---- declarations ----------------------------------------------------------------
    @property
    def decls(self) -> tuple[Bound, ...]:
        return self._decls

    def decl(self, name: str) -> Bound:
        for d in self._decls:
            if d.name == name:
                return d
        raise KeyError(name)

    def replace(self, **values: int) -> "Bounds":
        return Bounds(decls=self._decls, **{**self._values, **values})

    def under(self, decls: Sequence[Bound]) -> "Bounds":
        """These values under other declarations (missing ones at their default)."""
        decls = tuple(decls)
        if decls == self._decls:
            return self
        return Bounds(decls=decls, **{k: v for k, v in self._values.items()
                                      if k in {d.name for d in decls} or v != self.decl(k).default})

    # ---- shown forms -----------------------------------------------------------------
    def shown(self) -> list[Bound]:
        """The declarations written in this bounds' JSON and short forms."""
        return [d for d in self._decls if d.always_shown or self._values[d.name] != d.default]

    def as_dict(self) -> dict[str, int]:
        return {d.name: self._values[d.name] for d in self.shown()}

    def short(self) -> str:
        return ",".join(f"{d.letter}={self._values[d.name]}" for d in self.shown())

    @classmethod
    def parse(cls, text: str, decls: Sequence[Bound] = ()) -> "Bounds":
        """Parse ``"2,1,1,1"`` (values in declaration order, as ``--bounds 2,1,1,1``; trailing
        ones may be left out) or ``"N=2,S=2"`` / ``"vcpus=2,spaces=2"`` (others at default)."""
        try:
            return cls._parse(text, tuple(decls) or DEFAULT)
        except BoundsError:
            raise
        except ValueError:  # digits int() refuses: "²", or more than 4300 of them
            raise BoundsError(f"bounds must be integers, got {text[:40]!r}") from None

    @classmethod
    def _parse(cls, text: str, decls: tuple[Bound, ...]) -> "Bounds":
        letters = ",".join(d.letter for d in decls)
        parts = [p.strip() for p in text.split(",")]
        if any("=" in p for p in parts):
            values: dict[str, int] = {}
            for part in parts:
                key, _, value = part.partition("=")
                match = [d for d in decls if key.strip() in (d.name, d.letter)]
                if not match or not value.strip().isdigit():
                    raise BoundsError(f"bounds must be values {letters} or NAME=VALUE pairs, got {text!r}")
                if match[0].name in values:
                    raise BoundsError(f"bounds name {match[0].name} ({match[0].letter}) twice, in {text!r}")
                values[match[0].name] = int(value)
            return cls(decls=decls, **values)
        # values go in declaration order: every one up to the last always-shown bound is needed
        # (an optional bound before it, S for a variant that adds a bound, takes a value too)
        required = max((i + 1 for i, d in enumerate(decls) if d.always_shown), default=0)
        if not required <= len(parts) <= len(decls) or not all(p.isdigit() for p in parts):
            raise BoundsError(f"bounds must be {'four' if required == 4 else required} integers "
                              f"{','.join(d.letter for d in decls[:required])}"
                              + (f" (then optionally {','.join(d.letter for d in decls[required:])})"
                                 if len(decls) > required else "") + f", or NAME=VALUE pairs, got {text!r}")
        return cls(*(int(p) for p in parts), decls=decls)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], decls: Sequence[Bound] = ()) -> "Bounds":
        """Read a JSON ``bounds`` object: every always-shown bound, others optional."""
        decls = tuple(decls) or DEFAULT
        missing = [d.name for d in decls if d.always_shown and d.name not in raw]
        if missing:
            raise BoundsError(f"missing bound(s) {', '.join(missing)}")
        return cls(decls=decls, **dict(raw))


def _rebuild(decls: tuple[Bound, ...], values: dict[str, int]) -> Bounds:
    return Bounds(decls=decls, **values)


def loose(raw: Mapping[str, Any]) -> Bounds:
    """A trace's bounds before its protocol is known: the standard ones checked, any other
    name accepted as declared by the file (the protocol re-reads them with ``under``)."""
    extra = tuple(Bound(str(k), str(k), -1, 2**31, -1, always_shown=True)
                  for k, v in raw.items() if k not in {d.name for d in DEFAULT}
                  if str(k).isidentifier() and not str(k).startswith("_"))
    bad = [k for k in raw if k not in {d.name for d in DEFAULT} and not (str(k).isidentifier()
                                                                     and not str(k).startswith("_"))]
    if bad:
        raise BoundsError(f"bad bound name(s) {bad}")
    return Bounds.from_dict(raw, DEFAULT + extra)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)

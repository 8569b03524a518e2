"""Checkpoints of the vectorized search at BFS level boundaries: atomic, versioned, checked.

A checkpoint is ``DIR/checkpoint.npz``: an uncompressed numpy zip archive (every member
CRC-checked when read; nothing in it is unpickled or executed) holding the search's arrays at
the end of a level and a JSON header (format version, the protocol's identity, the bounds,
symmetry, the counters). It is written to a temporary file in DIR, flushed to disk, then
renamed over the previous one, so a kill at any moment (during the write included) leaves the
previous checkpoint or the new one, never a torn file. Loading a checkpoint of another
protocol, bounds, symmetry or format is refused (:class:`CheckpointError`).

A search that spills to a work folder on the checkpoint's file system does not copy its
files into the archive: the sorted runs on disk (written once), the append-only columns and
the frontier's file are hard-linked into ``DIR/linked/`` and the header records each one's
element count (a column's file may have grown since: only its first elements are the
checkpoint's). A checkpoint then costs what is still in memory, not the tens of gigabytes a
long search has spilled, so it can be written every level. Links are made before the archive
is renamed into place and the names the new archive does not use are removed after, so a kill
still leaves a whole checkpoint. Where a link cannot be made (another file system), the
file is copied into the archive as before. A resume links the runs and the frontier (files
it only reads) into its work folder; the columns it appends to are copied, unless it resumes
into the checkpoint's own folder, where they are linked too (cut to the checkpoint's length
first).

One search at a time saves into a folder: it holds an exclusive lock on ``DIR/.lock``
(:func:`in_use`) while it runs, released by the kernel when it ends, however it ends. A second
search started on the same folder (a resume started twice, a script rerun while the first run
still goes) is refused at once rather than left to write over the first one's checkpoints and to
fill the disk with a second copy of its spill.

The protocol's identity is a digest of what decides its state graph: its name, its state
layout at the bounds, its step instances and properties, and the code of its steps,
procedures and properties (bytecode and constants, not source text or addresses).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
import time
import types
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from deferral.checks.explicit.packing import KEY_FORMAT
from deferral.model.concrete import Model

FORMAT = "deferral-checkpoint/3"  # 3: spilled files hard-linked (2: AG EF edges by out-degree, runs in blocks)
READABLE = ("deferral-checkpoint/2", FORMAT)  # a /2 checkpoint is a /3 one without links
FILE_NAME = "checkpoint.npz"
LINKED = "linked"  # DIR/linked/: the spilled files a checkpoint holds by hard link
LOCK_NAME = ".lock"  # DIR/.lock: locked by the search that saves into DIR (it says which process)


@dataclass(frozen=True)
class SpilledFile:
    """A flat array in a work folder's file that a checkpoint may hold by hard link: its first
    ``count`` elements of ``dtype`` (an append-only file may be longer by then)."""

    path: Path
    dtype: np.dtype
    count: int


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, or of another search."""


def _BadZip() -> type[Exception]:  # noqa: N802 - an exception class, looked up when one is raised
    """zipfile's error, imported when a checkpoint is read (a plain ``check`` does not load zipfile)."""
    import zipfile

    return zipfile.BadZipFile


def protocol_identity(model: Model, symmetry: bool) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: protocol digest, bounds, symmetry, and the
    version of the states' keys (:data:`~deferral.checks.explicit.packing.KEY_FORMAT`)."""
    protocol = model.protocol
    h = hashlib.sha256()
    h.update(protocol.name.encode())
    for slot in model.layout.slots:
        h.update(f"{slot.label()}:{slot.size};".encode())
    for action in model.actions:
        h.update(action.label().encode() + b";")
    for step in protocol.steps:
        _digest_callable(h, step.guard)
        _digest_callable(h, step.effect)
    for proc in protocol.procedures:
        h.update(proc.name.encode())
        _digest_callable(h, proc.fn)
    for prop in protocol.properties:
        h.update(f"{prop.name}:{prop.kind};".encode())
        _digest_callable(h, prop.predicate)
    return {"protocol": protocol.name, "digest": h.hexdigest(), "bounds": model.bounds.as_dict(),
            "symmetry": symmetry, "key_format": KEY_FORMAT}


def _digest_callable(h: Any, fn: Any) -> None:
    code = getattr(fn, "__code__", None)
    if code is None:
        h.update(repr(type(fn)).encode())
        return
    digest_code(h, code)


def digest_code(h: Any, code: types.CodeType) -> None:
    """Feed ``h`` what ``code`` computes: its bytecode, names and constants (nested code too): alike in
    every process that loads the same source."""
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            digest_code(h, const)
        elif isinstance(const, frozenset):
            h.update(repr(sorted(map(repr, const))).encode())
        else:
            h.update(repr(const).encode())


@contextmanager
def in_use(directory: str | Path) -> Iterator[None]:
    """Hold ``directory`` for one search: while the block runs, another search that would save
    into it is refused (:class:`CheckpointError`, naming the process that holds it)."""
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / LOCK_NAME, "a+", encoding="utf-8")
    except OSError as exc:
        raise CheckpointError(f"checkpoint folder {folder}: cannot be used ({exc.strerror or exc})") from None
    try:
        locked = True
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read(200).strip() or "another process"
            raise CheckpointError(f"checkpoint folder {folder} is in use by another search ({holder}): "
                                  "wait for it to end, or give another folder") from None
        except OSError:  # a file system without locks (some network ones): the search goes on unguarded
            locked = False
        if locked:  # say who holds it
            lock.seek(0)
            lock.truncate()
            lock.write(f"process {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            lock.flush()
            for stale in folder.glob(".checkpoint-*.tmp"):  # a save cut by a kill: nobody else writes here now
                try:
                    stale.unlink()
                except OSError:
                    pass
        yield
    finally:
        lock.close()  # the lock goes with the file descriptor (and with the process, on a kill)


def save(directory: str | Path, header: dict[str, Any], arrays: dict[str, np.ndarray],
         files: dict[str, SpilledFile] | None = None) -> tuple[int, int]:
    """Write a checkpoint atomically into ``directory``: ``arrays`` into the archive, ``files``
    hard-linked (copied into the archive where a link cannot be made). Returns the bytes
    written (the archive's size) and the bytes held by link."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    payload = dict(arrays)
    linked: dict[str, dict[str, Any]] = {}
    linked_bytes = 0
    for name, spilled in (files or {}).items():
        held = _link(folder / LINKED, spilled.path)
        if held is None:  # another file system: copied into the archive
            payload[name] = np.memmap(spilled.path, dtype=spilled.dtype, mode="r", shape=(spilled.count,)) \
                if spilled.count else np.zeros(0, spilled.dtype)
            continue
        linked[name] = {"file": held, "dtype": spilled.dtype.str, "count": spilled.count}
        linked_bytes += spilled.count * spilled.dtype.itemsize
    if linked:
        _fsync_dir(folder / LINKED)
    payload["header"] = np.frombuffer(json.dumps({"format": FORMAT, **header, "linked": linked}).encode(),
                                      dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, folder / FILE_NAME)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)
    _drop_unused_links(folder / LINKED, {entry["file"] for entry in linked.values()})
    return (folder / FILE_NAME).stat().st_size, linked_bytes


def _link(into: Path, source: Path) -> str | None:
    """A hard link to ``source`` in the folder ``into`` (made once: a later checkpoint of the
    same file reuses it); its name there, or None where no link can be made."""
    try:
        into.mkdir(exist_ok=True)
    except OSError:
        return None
    name = f"{source.parent.name}-{source.name}"
    while True:
        target = into / name
        try:
            os.link(source, target)
            return name
        except FileExistsError:
            try:
                if os.path.samefile(source, target):
                    return name
            except OSError:
                pass
            name += "+"  # another file under that name (a work folder's name used again)
        except OSError:
            return None


def _drop_unused_links(folder: Path, used: set[str]) -> None:
    """Remove the linked files no checkpoint archive refers to any more."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if name not in used:
            try:
                os.unlink(folder / name)
            except OSError:
                pass


class Members:
    """The arrays of an open checkpoint, each read (and CRC-checked, or for a linked file its
    length checked) when asked for: a search resumed with a work folder moves each to disk
    before reading the next. Close it after use."""

    def __init__(self, path: Path, archive: Any, linked: dict[str, dict[str, Any]] | None = None) -> None:
        self.path = path
        self._archive = archive
        self._linked = linked or {}

    def is_linked(self, name: str) -> bool:
        """Whether array ``name`` is a hard-linked file (see :func:`save`), not in the archive."""
        return name in self._linked

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self._linked:
            source, dtype, count = self._linked_file(name)
            try:
                return np.fromfile(source, dtype=dtype, count=count)
            except OSError as exc:
                raise CheckpointError(f"checkpoint {self.path}: {source.name} unreadable: {exc}") from None
        try:
            return self._archive[name]
        except KeyError:
            raise
        except (OSError, ValueError, _BadZip(), EOFError) as exc:
            raise CheckpointError(f"checkpoint {self.path} is unreadable or corrupt: {exc}") from None

    def count(self, name: str) -> int:
        """Elements of a linked array (see :meth:`is_linked`)."""
        return self._linked_file(name)[2]

    def _linked_file(self, name: str) -> tuple[Path, np.dtype, int]:
        """The file, element type and count of linked array ``name``, its length checked."""
        entry = self._linked[name]
        try:
            file_name, dtype, count = str(entry["file"]), np.dtype(entry["dtype"]), int(entry["count"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {self.path}: bad entry for {name}: {exc}") from None
        if "/" in file_name or file_name in ("", ".", "..") or dtype.hasobject or count < 0:
            raise CheckpointError(f"checkpoint {self.path}: bad entry for {name}")
        source = self.path.parent / LINKED / file_name
        try:
            size = source.stat().st_size
        except OSError:
            raise CheckpointError(f"checkpoint {self.path}: {LINKED}/{file_name} is missing") from None
        if size < count * dtype.itemsize:
            raise CheckpointError(f"checkpoint {self.path}: {LINKED}/{file_name} is shorter than the "
                                  f"checkpoint says ({size} bytes, {count * dtype.itemsize} expected)")
        return source, dtype, count

    def copy_to(self, name: str, path: Path, chunk: int = 1 << 24, link: bool = False,
                append_in_place: bool = False) -> None:
        """Write the data of array ``name`` (a flat array) into the file ``path``, a chunk at a
        time (never whole in memory; the member's CRC is checked as it is read to its end).
        A linked array's first elements are copied, or with ``link`` (a file the search will
        only read) the file is linked again where it can be and is exactly that long. A file
        the search appends to is copied: two searches resumed from one checkpoint must not
        append to one file. With ``append_in_place`` (the search resumes into this checkpoint's
        own folder, which it holds: :func:`in_use`) it is linked too, cut first to the
        checkpoint's length (what a killed search appended after this checkpoint; the
        checkpoint never reads past its count): no copy of the columns, which at a billion
        states are some 8 gigabytes, at every resume."""
        if name in self._linked:
            source, dtype, count = self._linked_file(name)
            nbytes = count * dtype.itemsize
            if append_in_place:
                try:
                    os.truncate(source, nbytes)
                    os.link(source, path)
                    return
                except OSError:
                    pass
            if link and source.stat().st_size == nbytes:
                try:
                    os.link(source, path)
                    return
                except OSError:
                    pass
            try:
                member = open(source, "rb")
            except OSError as exc:
                raise CheckpointError(f"checkpoint {self.path}: {source.name} unreadable: {exc}") from None
            with member, open(path, "wb") as out:  # a failing write (a full disk) is the caller's
                _copy_bytes(member, out, nbytes, chunk)
            return
        try:
            with self._archive.zip.open(f"{name}.npy") as member, open(path, "wb") as out:
                fmt = np.lib.format
                major, _ = fmt.read_magic(member)
                read_header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
                shape, fortran, dtype = read_header(member)
                if fortran or len(shape) != 1 or dtype.hasobject:
                    raise ValueError(f"{name} is not a flat array")
                _copy_bytes(member, out, None, chunk)
        except KeyError:
            raise
        except (ValueError, _BadZip(), EOFError) as exc:
            raise CheckpointError(f"checkpoint {self.path} is unreadable or corrupt: {exc}") from None

    def close(self) -> None:
        self._archive.close()


def load(directory: str | Path, identity: dict[str, Any]) -> tuple[dict[str, Any], Members]:
    """The header and arrays (read when asked for) of the checkpoint in ``directory``, if it is
    of this search; the caller closes the arrays (:meth:`Members.close`)."""
    path = Path(directory) / FILE_NAME
    if not path.is_file():
        raise CheckpointError(f"no checkpoint in {directory} (expected {path})")
    archive = None
    try:
        archive = np.load(path, allow_pickle=False)
        header = json.loads(archive["header"].tobytes().decode())
    except (OSError, ValueError, KeyError, _BadZip(), UnicodeDecodeError, EOFError) as exc:
        if archive is not None:
            archive.close()
        raise CheckpointError(f"checkpoint {path} is unreadable or corrupt: {exc}") from None
    members = Members(path, archive, header.get("linked") if isinstance(header, dict) else None)
    try:
        if not isinstance(header, dict) or header.get("format") not in READABLE:
            raise CheckpointError(f"checkpoint {path}: format {header.get('format')!r} "
                                  f"is not {FORMAT!r}" if isinstance(header, dict) else f"checkpoint {path}: bad header")
        theirs = header.get("identity", {})
        theirs = {"key_format": 1, **theirs} if isinstance(theirs, dict) else {}  # before it was recorded: 1
        for key, what in (("protocol", "protocol"), ("bounds", "bounds"), ("symmetry", "symmetry"),
                          ("digest", "protocol definition (digest)"), ("key_format", "state key format")):
            if theirs.get(key) != identity[key]:
                mine, other = identity[key], theirs.get(key)
                if key == "digest":
                    mine, other = str(mine)[:12], str(other)[:12]
                raise CheckpointError(f"checkpoint {path} is of another search: its {what} is "
                                      f"{other!r}, this search's is {mine!r}")
    except BaseException:
        members.close()
        raise
    return header, members


def _copy_bytes(source: Any, out: Any, nbytes: int | None, chunk: int) -> None:
    """Copy the open file ``source`` into ``out``, ``chunk`` bytes at a time: its first
    ``nbytes`` (a shorter file is an error), or all of it (None)."""
    left = nbytes
    while left is None or left > 0:
        data = source.read(chunk if left is None else min(chunk, left))
        if not data:
            if left is None:
                return
            raise CheckpointError(f"{getattr(source, 'name', 'a linked file')} ended early")
        out.write(data)
        if left is not None:
            left -= len(data)


def describe(directory: str | Path) -> str:
    """One line on the checkpoint in ``directory`` (its search and how far it got), from its
    header alone, for a message that names it."""
    path = Path(directory) / FILE_NAME
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = json.loads(archive["header"].tobytes().decode())
        identity = header["identity"]
        bounds = ",".join(f"{k}={v}" for k, v in identity["bounds"].items())
        return (f"a checkpoint of {identity['protocol']} at {bounds} ({int(header['states']):,} states, "
                f"depth {int(header['depth'])})")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, _BadZip(), EOFError) as exc:
        return f"a checkpoint (unreadable: {exc})"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


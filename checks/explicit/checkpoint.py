"""Checkpoints of the vectorized search at BFS level boundaries: atomic, versioned, checked.

A checkpoint is one file, ``DIR/checkpoint.npz``: an uncompressed numpy zip archive (every
member CRC-checked when read; nothing in it is unpickled or executed) holding the search's
arrays at the end of a level and a JSON header (format version, the protocol's identity,
the bounds, symmetry, the counters). It is written to a temporary file in DIR, flushed to
disk, then renamed over the previous one, so a kill at any moment (during the write
included) leaves the previous checkpoint or the new one, never a torn file. Loading a
checkpoint of another protocol, bounds, symmetry or format is refused
(:class:`CheckpointError`).

The protocol's identity is a digest of what decides its state graph: its name, its state
layout at the bounds, its step instances and properties, and the code of its steps,
procedures and properties (bytecode and constants, not source text or addresses).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import types
from pathlib import Path
from typing import Any

import numpy as np

from deferral.model.concrete import Model

FORMAT = "deferral-checkpoint/2"  # 2: AG EF edges by out-degree, visited runs in blocks
FILE_NAME = "checkpoint.npz"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, or of another search."""


def _BadZip() -> type[Exception]:  # noqa: N802 - an exception class, looked up when one is raised
    """zipfile's error, imported when a checkpoint is read (a plain ``check`` does not load zipfile)."""
    import zipfile

    return zipfile.BadZipFile


def protocol_identity(model: Model, symmetry: bool) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: protocol digest, bounds, symmetry."""
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
            "symmetry": symmetry}


def _digest_callable(h: Any, fn: Any) -> None:
    code = getattr(fn, "__code__", None)
    if code is None:
        h.update(repr(type(fn)).encode())
        return
    _digest_code(h, code)


def _digest_code(h: Any, code: types.CodeType) -> None:
    h.update(code.co_code)
    h.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _digest_code(h, const)
        elif isinstance(const, frozenset):
            h.update(repr(sorted(map(repr, const))).encode())
        else:
            h.update(repr(const).encode())


def save(directory: str | Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> int:
    """Write a checkpoint atomically into ``directory``; returns its size in bytes."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    payload = dict(arrays)
    payload["header"] = np.frombuffer(json.dumps({"format": FORMAT, **header}).encode(), dtype=np.uint8)
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
    return (folder / FILE_NAME).stat().st_size


class Members:
    """The arrays of an open checkpoint, each read (and CRC-checked) when asked for: a search
    resumed with a work folder moves each to disk before reading the next. Close it after use."""

    def __init__(self, path: Path, archive: Any) -> None:
        self.path = path
        self._archive = archive

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._archive[name]
        except KeyError:
            raise
        except (OSError, ValueError, _BadZip(), EOFError) as exc:
            raise CheckpointError(f"checkpoint {self.path} is unreadable or corrupt: {exc}") from None

    def copy_to(self, name: str, path: Path, chunk: int = 1 << 24) -> None:
        """Write the data of array ``name`` (a flat array) into the file ``path``, a chunk at a
        time (never whole in memory; the member's CRC is checked as it is read to its end)."""
        try:
            with self._archive.zip.open(f"{name}.npy") as member, open(path, "wb") as out:
                fmt = np.lib.format
                major, _ = fmt.read_magic(member)
                read_header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
                shape, fortran, dtype = read_header(member)
                if fortran or len(shape) != 1 or dtype.hasobject:
                    raise ValueError(f"{name} is not a flat array")
                while True:
                    data = member.read(chunk)
                    if not data:
                        break
                    out.write(data)
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
    members = Members(path, archive)
    try:
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise CheckpointError(f"checkpoint {path}: format {header.get('format')!r} "
                                  f"is not {FORMAT!r}" if isinstance(header, dict) else f"checkpoint {path}: bad header")
        theirs = header.get("identity", {})
        for key, what in (("protocol", "protocol"), ("bounds", "bounds"), ("symmetry", "symmetry"),
                          ("digest", "protocol definition (digest)")):
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


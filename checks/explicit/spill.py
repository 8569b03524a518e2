"""Disk spill of the vectorized search: visited runs, BFS parents and AG EF edges in a work folder.

External-memory breadth-first search in the style of Stern and Dill's disk-based Murphi:
when what the search stores outgrows its memory budget, the sorted runs of the visited set
(keys with their state numbers) are written to files, the keys compressed as deltas in
blocks (:mod:`deferral.checks.explicit.runcodec`), and dropped from memory, and
the append-only columns (each state's BFS parent and action, the AG EF edges) move to flat
files. A level's new candidates are then checked against the runs on disk once per level,
by reading each run sequentially in blocks (its keys are sorted, the candidates too: a
merge, with a small in-memory index of each block's first key to skip blocks that no
candidate falls into). Nothing is reordered: counts, verdicts and shortest counterexamples
are those of the in-memory search.

Files are read with explicit reads (``np.fromfile``), not kept mapped, so they count in the
page cache, not in the process's resident memory; only the final parent and action columns
are memory-mapped (a counterexample reads a few entries). Each search writes into a fresh
subfolder of the work folder, removed when the search ends (left behind by a kill). A full
or unwritable disk raises :class:`SpillError`: the search stops with ``stopped_by``
"disk-full" (exit 3).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from collections import OrderedDict
from typing import Callable, Iterator

import numpy as np

from deferral.checks.explicit import levelc, runcodec
from deferral.checks.explicit.visited import Run

#: Keys a compressed block of a spilled run (512 KiB of uint64 keys decoded). A level's merge
#: looks its pieces' candidates up a piece at a time, in key order: a piece touches a few
#: blocks of each run, and the last one decoded is kept for the next piece (runs written
#: with blocks of 2**20 keys, by checkpoints of earlier versions, are read as they are).
BLOCK = 1 << 16
#: Keys a compressed block of a parked array (a level's merge reads slices of a few hundred
#: keys of each chunk a piece: a get decodes a block or two).
PARKED_BLOCK = 1 << 9
#: Elements per piece when a spilled column is read back (the AG EF pass's edges by source
#: hold some 8 bytes an element of a piece of out-degrees).
PIECE = 1 << 20
#: At most this many parked files are kept open for reading (least recently read closed first),
#: and at most a quarter of the process's limit of open files (often 1,024): a level's merge
#: reads its runs' files in turn, a piece at a time, so fewer descriptors than files would
#: close and reopen every file for every piece
MAX_OPEN_FILES = 512


class SpillError(Exception):
    """The work folder cannot take what the search spills (full, or not writable)."""


class WorkDir:
    """This search's private subfolder of the user's work folder, removed by :meth:`close`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        try:
            Path(root).mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(prefix="deferral-spill-", dir=root))
        except OSError as exc:
            raise SpillError(f"work folder {root}: {exc.strerror or exc}") from None
        self.files = 0
        self.bytes_written = 0
        self._closed = False
        self._lock = threading.Lock()  # worker threads park their chunks' arrays side by side

    def new_file(self, stem: str) -> Path:
        with self._lock:
            if self._closed:  # a worker still busy after the search ended (an interrupt, a limit)
                raise SpillError(f"work folder {self.path.parent}: the search has ended")
            self.files += 1
            return self.path / f"{self.files:05d}-{stem}"

    def wrote(self, nbytes: int) -> None:
        with self._lock:
            self.bytes_written += nbytes

    def close(self, settle_s: float = 5.0) -> None:
        """Remove the folder. Worker threads may still be writing a file they named before (an
        interrupt ends the search without waiting for them): no new file is named after this,
        and the removal is retried until the folder is gone or ``settle_s`` has passed."""
        with self._lock:
            self._closed = True
        deadline = time.monotonic() + settle_s
        while True:
            shutil.rmtree(self.path, ignore_errors=True)
            if not self.path.exists() or time.monotonic() > deadline:
                return
            time.sleep(0.05)


def _written(work: WorkDir, path: Path, write: Callable[[], None], nbytes: int) -> None:
    """Run ``write`` (``nbytes`` into ``path``); a full or failing disk raises :class:`SpillError`."""
    try:
        write()
    except OSError as exc:
        what = "full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else (exc.strerror or str(exc))
        raise SpillError(f"work folder {work.path.parent}: {what} while writing {path.name}") from None
    work.wrote(nbytes)


@dataclass
class _Run:
    """One sorted run on disk: ``n`` keys compressed a block of ``size`` keys at a time
    (:mod:`runcodec`), ``offsets[b]`` the byte where block ``b`` starts, and their state
    numbers (a flat file). The last block a lookup decoded is kept (``cached``)."""

    keys_path: Path
    ids_path: Path
    offsets: np.ndarray  # blocks + 1 byte offsets into keys_path
    n: int
    fence: np.ndarray  # the first key of each block
    ids_dtype: np.dtype
    size: int  # keys a block (the last one shorter)
    cached: tuple[int, np.ndarray, np.ndarray | None] | None = None  # block, its keys, its ids once read

    def block(self, b: int, key_dtype: np.dtype) -> np.ndarray:
        """The keys of block ``b`` (decoded)."""
        a, z = int(self.offsets[b]), int(self.offsets[b + 1])
        return runcodec.decode(_read_slice(self.keys_path, np.dtype(np.uint8), a, z), key_dtype)

    def ids(self, b: int, count: int) -> np.ndarray:
        """The state numbers of block ``b`` (``count`` of them)."""
        return _read_slice(self.ids_path, self.ids_dtype, b * self.size, b * self.size + count)


def block_size_of(n: int, blocks: int) -> int:
    """The keys a block of a run of ``n`` keys in ``blocks`` blocks (every block but the last
    full, a power of two: the only one giving that many blocks)."""
    if blocks <= 1:
        return max(n, 1)
    size = 1
    while -(-n // size) > blocks:
        size *= 2
    return size


def _save_blocks(path: Path, blocks: list[np.ndarray], dtype: np.dtype) -> None:
    """Write ``blocks`` into ``path`` as one flat array of ``dtype``."""
    with open(path, "wb") as f:
        for block in blocks:
            np.ascontiguousarray(block, dtype=dtype).tofile(f)


def _save_compressed(path: Path, blocks: list[np.ndarray], dtype: np.dtype,
                     size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Write the keys of ``blocks`` (one sorted run) into ``path`` in blocks of ``size`` keys
    (default :data:`BLOCK`), each compressed; returns the blocks' byte offsets (and an end)
    and first keys."""
    offsets, fence = [0], []
    with open(path, "wb") as f:
        for keys in _reblocked(blocks, dtype, BLOCK if size is None else size):
            fence.append(keys[0])
            data = runcodec.encode(keys)
            data.tofile(f)
            offsets.append(offsets[-1] + data.nbytes)
    return np.asarray(offsets, dtype=np.int64), np.asarray(fence, dtype=dtype)


def _reblocked(blocks: list[np.ndarray], dtype: np.dtype, size: int) -> Iterator[np.ndarray]:
    """The keys of ``blocks`` again, in pieces of ``size`` (the last one shorter)."""
    held: list[np.ndarray] = []
    count = 0
    for block in blocks:
        block = np.asarray(block, dtype=dtype)
        while block.shape[0]:
            take = min(size - count, block.shape[0])
            held.append(block[:take])
            count += take
            block = block[take:]
            if count == size:
                yield np.concatenate(held)
                held, count = [], 0
    if count:
        yield np.concatenate(held)


class DiskRuns:
    """Sorted runs of (key, state number) on disk, keys compressed (:mod:`runcodec`); a batch
    of sorted keys is looked up by a sequential pass over each run."""

    def __init__(self, work: WorkDir, key_dtype: object) -> None:
        self.work = work
        self.key_dtype = np.dtype(key_dtype)
        self.runs: list[_Run] = []

    def __len__(self) -> int:
        return sum(r.n for r in self.runs)

    @property
    def disk_bytes(self) -> int:
        return sum(int(r.offsets[-1]) + r.n * r.ids_dtype.itemsize for r in self.runs)

    @property
    def key_bytes(self) -> int:
        """Bytes of the compressed keys on disk."""
        return sum(int(r.offsets[-1]) for r in self.runs)

    def add(self, run: Run) -> None:
        """Write one sorted run, block by block (its keys unique and disjoint from the other runs')."""
        n = run.size
        if n == 0:
            return
        ids_dtype = np.dtype(run.ids[0].dtype)
        kp, ip = self.work.new_file("keys.bin"), self.work.new_file("ids.bin")
        got: list[tuple[np.ndarray, np.ndarray]] = []

        def write_keys() -> None:
            got.append(_save_compressed(kp, run.keys, self.key_dtype, BLOCK))
        _written(self.work, kp, write_keys, 0)
        offsets, fence = got[0]
        self.work.wrote(int(offsets[-1]))
        _written(self.work, ip, lambda: _save_blocks(ip, run.ids, ids_dtype), n * ids_dtype.itemsize)
        self.runs.append(_Run(kp, ip, offsets, n, fence, ids_dtype, BLOCK))

    def adopt(self, write_keys: Callable[[Path], None], write_ids: Callable[[Path], None], offsets: np.ndarray,
              fence: np.ndarray, n: int, ids_dtype: np.dtype) -> None:
        """Add a run already compressed (a checkpoint's): ``write_keys(path)`` and
        ``write_ids(path)`` write its two files as :meth:`saved` gives them."""
        kp, ip = self.work.new_file("keys.bin"), self.work.new_file("ids.bin")
        _written(self.work, kp, lambda: write_keys(kp), int(offsets[-1]))
        _written(self.work, ip, lambda: write_ids(ip), n * np.dtype(ids_dtype).itemsize)
        offsets = np.asarray(offsets, dtype=np.int64)
        self.runs.append(_Run(kp, ip, offsets, n, np.asarray(fence, self.key_dtype), np.dtype(ids_dtype),
                              block_size_of(n, offsets.shape[0] - 1)))

    def saved(self) -> list[dict[str, np.ndarray]]:
        """Each run as it is stored: its compressed keys and state numbers (read-only memory
        maps), block offsets and first keys, what :meth:`adopt` takes back. (A checkpoint now
        links the runs' files instead of reading them so; the tests of the on-disk form use it.)"""
        return [{"keys": np.memmap(r.keys_path, dtype=np.uint8, mode="r", shape=(int(r.offsets[-1]),)),
                 "ids": np.memmap(r.ids_path, dtype=r.ids_dtype, mode="r", shape=(r.n,)),
                 "offsets": r.offsets, "fence": r.fence} for r in self.runs]

    def lookup(self, queries: np.ndarray, out: np.ndarray) -> None:
        """Set ``out[i]`` to the state number of ``queries[i]`` (sorted) where a run has it.
        Successive calls with ascending queries (a level's merge pieces) decode each block once."""
        if queries.shape[0] == 0:
            return
        ends = np.concatenate([queries[:1], queries[-1:]])
        for run in self.runs:
            # the blocks the queries' range falls in (a few of a long run's fences), then the
            # queries each may hold: from its first key to the next block's
            first, last = (np.searchsorted(run.fence, ends, side="right") - 1).tolist()
            first = max(first, 0)
            if last < 0:
                continue
            cut = np.searchsorted(queries, run.fence[first + 1:last + 1])
            cut = np.concatenate([[0], cut, [queries.shape[0]]])
            for k in np.flatnonzero(cut[1:] > cut[:-1]).tolist():
                b, lo, hi = first + k, int(cut[k]), int(cut[k + 1])
                if run.cached is not None and run.cached[0] == b:
                    block, ids = run.cached[1], run.cached[2]
                else:
                    block, ids = run.block(b, self.key_dtype), None
                q = queries[lo:hi]
                pos = levelc.find_sorted(block, q)
                if pos is None:  # numpy: a binary search a query
                    count = block.shape[0]
                    pos = np.searchsorted(block, q)
                    np.minimum(pos, count - 1, out=pos)
                    pos[block[pos] != q] = -1
                hit = pos >= 0
                if hit.any():
                    if ids is None:
                        ids = run.ids(b, block.shape[0])
                    out[lo:hi][hit] = ids[pos[hit]]
                run.cached = (b, block, ids)

    @staticmethod
    def decoded(keys: np.ndarray, offsets: np.ndarray, key_dtype: object) -> list[np.ndarray]:
        """The key blocks of a run's compressed keys (as :meth:`saved` gives them)."""
        return [runcodec.decode(keys[int(a):int(b)], key_dtype) for a, b in zip(offsets[:-1], offsets[1:])]


class Column:
    """An append-only array, built a piece at a time, whose pieces can move to one flat file
    of a work folder (then it is read back in pieces, or memory-mapped as a whole)."""

    def __init__(self, dtype: object, work: WorkDir | None = None, stem: str = "column") -> None:
        self.dtype = np.dtype(dtype)
        self.work = work
        self.path = work.new_file(f"{stem}.bin") if work is not None else None
        self.pieces: list[np.ndarray] = []
        self.on_disk = 0  # elements in the file, before the pieces

    def __len__(self) -> int:
        return self.on_disk + sum(p.shape[0] for p in self.pieces)

    @property
    def memory_bytes(self) -> int:
        return sum(p.nbytes for p in self.pieces)

    def append(self, piece: np.ndarray) -> None:
        self.pieces.append(np.asarray(piece, dtype=self.dtype))

    def spill(self) -> None:
        """Move the pieces in memory to the end of the file (no-op without a work folder)."""
        if self.work is None or self.path is None or not self.pieces:
            return
        pieces = self.pieces
        _append(self.work, self.path, pieces, self.dtype, self.on_disk)
        self.on_disk += sum(p.shape[0] for p in pieces)
        self.pieces = []

    def adopt(self, fill: Callable[[Path], None], count: int) -> None:
        """Take as this (empty) column's the ``count`` elements ``fill(path)`` writes into its
        file (a checkpoint's column, on resume)."""
        assert self.work is not None and self.path is not None and len(self) == 0
        path = self.path
        _written(self.work, path, lambda: fill(path), count * self.dtype.itemsize)
        self.on_disk = count

    def array(self) -> np.ndarray:
        """The whole column: one array in memory, or, once spilled, a read-only memory map."""
        if self.on_disk == 0:
            whole = np.concatenate(self.pieces) if self.pieces else np.zeros(0, self.dtype)
            self.pieces = [whole] if whole.shape[0] else []
            return whole
        assert self.path is not None
        try:
            self.spill()
        except SpillError:  # the disk is full: the whole column, read back into memory
            return np.concatenate([np.fromfile(self.path, dtype=self.dtype, count=self.on_disk), *self.pieces])
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.on_disk,))

    def slice(self, a: int, b: int) -> np.ndarray:
        """Elements ``a..b-1``: an explicit read of the file's part, a view of the memory's."""
        parts = []
        if a < self.on_disk:
            assert self.path is not None
            parts.append(_read_slice(self.path, self.dtype, a, min(b, self.on_disk)))
        if b > self.on_disk and self.pieces:
            if len(self.pieces) > 1:
                self.pieces = [np.concatenate(self.pieces)]
            parts.append(self.pieces[0][max(0, a - self.on_disk):b - self.on_disk])
        return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0, self.dtype)

    def read(self, consume: bool = False) -> Iterator[np.ndarray]:
        """The column in pieces, in order (from the file by reads of :data:`PIECE` elements,
        then the pieces in memory); ``consume``: each piece in memory is dropped once given."""
        if self.on_disk:
            assert self.path is not None
            with open(self.path, "rb") as f:
                for _ in range(0, self.on_disk, PIECE):
                    yield np.fromfile(f, dtype=self.dtype, count=PIECE)
        if consume:
            while self.pieces:
                yield self.pieces.pop(0)
        else:
            yield from list(self.pieces)


def _append(work: WorkDir, path: Path, pieces: list[np.ndarray], dtype: np.dtype, held: int) -> None:
    """Write ``pieces`` (as ``dtype``) after the ``held`` elements of the flat array in ``path``;
    a failing write leaves the file as it was, so a later append lands right (a full or failing
    disk raises :class:`SpillError`)."""
    keep = held * dtype.itemsize

    def write() -> None:
        with open(path, "ab") as f:
            try:
                for p in pieces:
                    np.ascontiguousarray(p, dtype=dtype).tofile(f)
            except OSError:
                f.truncate(keep)
                raise
    _written(work, path, write, sum(p.shape[0] for p in pieces) * dtype.itemsize)


def _read_slice(path: Path, dtype: np.dtype, a: int, b: int) -> np.ndarray:
    """Elements ``a..b-1`` of the flat array of ``dtype`` in the file ``path`` (an explicit read)."""
    if b <= a:
        return np.zeros(0, dtype)
    with open(path, "rb") as f:
        return np.fromfile(f, dtype=dtype, count=b - a, offset=a * dtype.itemsize)


class Parked:
    """Named arrays a level puts aside until its end (the chunks' candidates and AG EF arrays):
    in memory, or, once :meth:`spill` ran, each in a file of the work folder, read back whole
    or a slice at a time; sorted keys (``put(..., sorted_keys=True)``) are written compressed
    in blocks of :data:`PARKED_BLOCK` (:mod:`runcodec`). Safe to use from several threads."""

    def __init__(self, work: WorkDir | None) -> None:
        self.work = work
        self._mem: dict[object, np.ndarray] = {}
        self._sorted: dict[object, int] = {}  # sorted keys -> keys a compressed block
        # on disk: file, dtype, length, and the blocks' byte offsets for compressed keys
        self._disk: dict[object, tuple[Path, np.dtype, int, np.ndarray | None]] = {}
        # files being read, kept open (a merge reads each many times), at most MAX_OPEN_FILES:
        # the least recently read is closed first, or once its reads in flight end
        self._fds: OrderedDict[object, int] = OrderedDict()
        self._reading: dict[int, int] = {}  # descriptor -> reads in flight
        self._closing: set[int] = set()  # evicted while read: closed by its last reader
        self._held: set[object] = set()  # kept in memory by spill() until popped (see put)
        self._max_open = _open_files_cap()
        self._lock = threading.Lock()

    @property
    def memory_bytes(self) -> int:
        with self._lock:
            return sum(a.nbytes for a in self._mem.values())

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._mem or name in self._disk

    def put(self, name: object, array: np.ndarray, sorted_keys: bool = False, hold: bool = False,
            block: int = PARKED_BLOCK) -> None:
        """Park ``array`` as ``name``; ``sorted_keys``: written compressed, ``block`` keys a
        block (a slice read decodes the blocks it touches); ``hold``: :meth:`spill` leaves it in
        memory (it is about to be popped: a chunk's candidates waiting for their group's merge)."""
        with self._lock:
            self._mem[name] = array
            if sorted_keys and array.shape[0]:
                self._sorted[name] = block
            if hold:
                self._held.add(name)

    def spill(self, names: list[object] | None = None) -> None:
        """Write every array held in memory (or those of ``names``) to its own file and drop it
        (no-op without a work folder). The writing is done outside the lock: threads spill
        their own arrays side by side, and read the others meanwhile."""
        if self.work is None:
            return
        work = self.work
        with self._lock:
            todo = [(name, self._mem[name], self._sorted.get(name, 0))
                    for name in (list(self._mem) if names is None else names)
                    if name in self._mem and name not in self._held]
        for name, held, block in todo:
            array = np.ascontiguousarray(held)
            path = work.new_file("parked.bin")
            offsets = None
            if block:
                got: list[np.ndarray] = []
                _written(work, path, lambda: got.append(_save_compressed(path, [array], array.dtype,
                                                                         block)[0]), 0)
                offsets = got[0]
                work.wrote(int(offsets[-1]))
            else:
                _written(work, path, lambda: array.tofile(str(path)), array.nbytes)
            with self._lock:
                if self._mem.get(name) is held:  # not popped, nor spilled by another thread, meanwhile
                    self._disk[name] = (path, array.dtype, array.shape[0], offsets, block)
                    del self._mem[name]
                    continue
            path.unlink(missing_ok=True)

    def get(self, name: object, a: int = 0, b: int | None = None) -> np.ndarray:
        """Elements ``a..b-1`` of an array (all of it from ``a`` when ``b`` is None)."""
        with self._lock:
            if name in self._mem:
                return self._mem[name][a:b]
            path, dtype, n, offsets, block = self._disk[name]
            fd = self._open(name, path)
        try:
            return self._read(fd, dtype, n, offsets, block, a, b)
        finally:
            with self._lock:
                self._done_reading(fd)

    def _open(self, name: object, path: Path) -> int:
        """The open descriptor of ``name``'s file, counted as read from (the lock is held)."""
        fd = self._fds.get(name)
        if fd is None:
            fd = self._fds[name] = os.open(path, os.O_RDONLY)
        else:
            self._fds.move_to_end(name)
        self._reading[fd] = self._reading.get(fd, 0) + 1
        while len(self._fds) > min(MAX_OPEN_FILES, self._max_open):
            self._release(self._fds.popitem(last=False)[1])
        return fd

    def _release(self, fd: int) -> None:
        """Close ``fd`` now, or when its last read in flight ends (the lock is held)."""
        if self._reading.get(fd):
            self._closing.add(fd)
        else:
            os.close(fd)

    def _done_reading(self, fd: int) -> None:
        left = self._reading[fd] - 1
        if left:
            self._reading[fd] = left
            return
        del self._reading[fd]
        if fd in self._closing:
            self._closing.discard(fd)
            os.close(fd)

    @staticmethod
    def _read(fd: int, dtype: np.dtype, n: int, offsets: np.ndarray | None, block: int, a: int,
              b: int | None) -> np.ndarray:
        b = n if b is None else min(b, n)
        if offsets is None:
            return _pread(fd, dtype, a, b)
        if b <= a:
            return np.zeros(0, dtype)
        first, last = a // block, -(-b // block)
        data = _pread(fd, np.dtype(np.uint8), int(offsets[first]), int(offsets[last]))
        base = int(offsets[first])
        keys = [runcodec.decode(data[int(offsets[k]) - base:int(offsets[k + 1]) - base], dtype)
                for k in range(first, last)]
        whole = keys[0] if len(keys) == 1 else np.concatenate(keys)
        return whole[a - first * block:b - first * block]

    def pop(self, name: object) -> np.ndarray:
        """The whole array, dropped from here (its file removed)."""
        whole = self.get(name)
        self.drop(name)
        return whole

    def drop(self, name: object) -> None:
        """Forget an array without reading it back (its file removed)."""
        with self._lock:
            self._sorted.pop(name, None)
            self._held.discard(name)
            fd = self._fds.pop(name, None)
            if fd is not None:
                self._release(fd)
            if self._mem.pop(name, None) is None:
                path = self._disk.pop(name)[0]
                path.unlink(missing_ok=True)

    def clear(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                self._release(fd)
            for path, *_ in self._disk.values():
                path.unlink(missing_ok=True)
            self._mem, self._disk, self._sorted, self._fds = {}, {}, {}, OrderedDict()
            self._held = set()


def _open_files_cap() -> int:
    """Descriptors a :class:`Parked` may keep open: a quarter of the process's soft limit of
    open files (the search, its workers and the user's own files have the rest), at least 16."""
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):  # no resource module (Windows): a cautious 128
        return 128
    if soft == resource.RLIM_INFINITY:
        return MAX_OPEN_FILES
    return max(16, soft // 4)


def _pread(fd: int, dtype: np.dtype, a: int, b: int) -> np.ndarray:
    """Elements ``a..b-1`` of the flat array of ``dtype`` in the open file ``fd`` (a positioned
    read: no seek, so threads share the descriptor), into a new writable array."""
    if b <= a:
        return np.zeros(0, dtype)
    out = np.empty(b - a, dtype=dtype)
    view = memoryview(out).cast("B")
    done, at = 0, a * dtype.itemsize
    while done < view.nbytes:
        got = os.preadv(fd, [view[done:]], at + done)
        if got <= 0:
            raise OSError(errno.EIO, f"short read of a parked array ({done} of {view.nbytes} bytes)")
        done += got
    return out


class KeysFile:
    """A level's keys written to one file of the work folder (a frontier too big to hold):
    ``keys[a:b]`` reads that slice, ``shape`` is the array's."""

    def __init__(self, work: WorkDir, pieces: list[np.ndarray], dtype: object) -> None:
        self.dtype = np.dtype(dtype)
        self.work = work
        self.path = work.new_file("frontier.bin")
        self.shape = (0,)
        _written(work, self.path, lambda: open(self.path, "wb").close(), 0)
        self.append(pieces)

    @classmethod
    def adopt(cls, work: WorkDir, dtype: object, fill: Callable[[Path], None], count: int) -> "KeysFile":
        """A level's ``count`` keys, which ``fill(path)`` writes into a new file of the work
        folder (a checkpoint's frontier, on resume)."""
        keys = cls.__new__(cls)
        keys.dtype, keys.work, keys.path, keys.shape = np.dtype(dtype), work, work.new_file("frontier.bin"), (count,)
        _written(work, keys.path, lambda: fill(keys.path), count * keys.dtype.itemsize)
        return keys

    def append(self, pieces: list[np.ndarray]) -> None:
        """Write ``pieces`` after the keys already in the file (a level's merge writes the next
        frontier a key range at a time, so it is never whole in memory)."""
        n = sum(p.shape[0] for p in pieces)
        if n == 0:
            return
        _append(self.work, self.path, pieces, self.dtype, self.shape[0])
        self.shape = (self.shape[0] + n,)

    def __getitem__(self, cut: slice) -> np.ndarray:
        a, b, _ = cut.indices(self.shape[0])
        return _read_slice(self.path, self.dtype, a, b)

    def array(self) -> np.ndarray:
        return self[0:self.shape[0]]

    def mapped(self) -> np.ndarray:
        """The keys as a read-only memory map (a checkpoint streams them into its archive)."""
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=self.shape)

    def close(self) -> None:
        self.path.unlink(missing_ok=True)

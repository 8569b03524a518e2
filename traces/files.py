"""Output files: checked before any work starts, then written atomically with normal permissions."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

#: Pseudo-filesystems a result file must never go to.
_FORBIDDEN = ("/proc", "/sys")


class OutputPathError(ValueError):
    """An output path that cannot take a file (a folder, a file as parent, /proc, ...)."""


def check_output_path(path: str | Path, flag: str = "output") -> None:
    """Raise :class:`OutputPathError` (one line, naming ``flag``) unless ``path`` can take a file.

    Called before the work starts, so a long search is never lost to a bad output path.
    Folders on the way that do not exist yet are fine (they are created when writing).
    """
    text = str(path)
    if not text or "\0" in text:
        raise OutputPathError(f"{flag} {text!r}: not a file name")
    target = Path(os.path.abspath(text))
    real = Path(os.path.realpath(target))
    for root in _FORBIDDEN:
        if real == Path(root) or Path(root) in real.parents:
            raise OutputPathError(f"{flag} {text}: under {root}, which does not hold files")
    try:
        info = os.stat(real)
    except (FileNotFoundError, NotADirectoryError):
        info = None
    except OSError as exc:
        raise OutputPathError(f"{flag} {text}: {exc.strerror or exc}") from None
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise OutputPathError(f"{flag} {text}: is a folder, give a file name")
        if not stat.S_ISREG(info.st_mode) and str(real) != os.devnull:
            raise OutputPathError(f"{flag} {text}: not a regular file")
    folder = real.parent
    while not folder.exists():
        if folder.is_symlink():
            raise OutputPathError(f"{flag} {text}: {folder} is a broken link")
        folder = folder.parent
    if not folder.is_dir():
        raise OutputPathError(f"{flag} {text}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputPathError(f"{flag} {text}: cannot write in {folder}")


def write_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename.

    The file gets the permissions of any new file (0666 less the umask), not the 0600 of a
    temporary file. ``os.devnull`` is written to directly.
    """
    path = Path(path)
    if os.path.realpath(path) == os.devnull:
        with open(os.devnull, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    folder = path.parent if str(path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

"""Writing generated packages: all variant files of a package or none, never through a symlink.

A package is staged in a hidden folder beside the target, then swapped in
with one rename (an atomic exchange where Linux offers renameat2, else two
renames whose leftover a later compile restores). A killed compile leaves
at most a hidden stage folder, which the next compile removes. Writers of
one output folder take turns (`locked`): data-loader workers, DDP ranks and
parallel tests compile the same spec at once, and one writer's recovery
must never sweep away another's stage.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterable

MAX_GENERATED_BYTES = 64 * 1024 * 1024


class OutputProblem(Exception):
    """A one-line reason a package cannot be written where asked (names the path)."""


def read_existing(path: Path) -> str | None:
    """The text of a file omgen may have written, or None when it is absent, not a regular file, or unreadable.

    Opened non-blocking and checked on the descriptor: a FIFO or device planted
    in the output folder cannot stall or flood the compiler.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_GENERATED_BYTES:
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_GENERATED_BYTES + 1)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)


def refuse_symlinks(paths: Iterable[Path]) -> None:
    for path in paths:
        if path.is_symlink():
            raise OutputProblem(f"{path}: refusing to write through a symbolic link (pass the real folder with -o)")


def write_package(package: Path, files: dict[str, str]) -> None:
    """Make `package` hold `files` (name → text) plus whatever else it held, in one swap."""
    parent = package.parent
    recover(package)
    stage = Path(tempfile.mkdtemp(prefix=f".{package.name}.stage-", dir=parent))
    try:
        if package.is_dir():
            for entry in package.iterdir():
                if entry.name == "__pycache__" or entry.name in files:
                    continue
                target = stage / entry.name
                if entry.is_dir() and not entry.is_symlink():
                    shutil.copytree(entry, target, symlinks=True)
                else:
                    shutil.copy2(entry, target, follow_symlinks=False)
        for name, text in files.items():
            with open(stage / name, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(stage, 0o777 & ~_umask())
        if not package.exists():
            os.rename(stage, package)
            return
        if _exchange(stage, package):
            shutil.rmtree(stage, ignore_errors=True)  # now holds the old package
            return
        old = Path(tempfile.mkdtemp(prefix=f".{package.name}.old-", dir=parent))
        os.rmdir(old)
        os.rename(package, old)
        os.rename(stage, package)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


@contextlib.contextmanager
def locked(folder: Path):
    """Hold an exclusive lock on `folder` itself (flock on its descriptor: no lock file is left behind)."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_file(path: Path, text: str) -> None:
    """One file, through a temporary file in the same folder and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a generated file is as readable as any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def recover(package: Path) -> None:
    """Remove what a killed compile left beside `package`; restore the package if it was mid-swap."""
    parent = package.parent
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        if entry.name.startswith(f".{package.name}.stage-") and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(f".{package.name}.old-") and not entry.is_symlink():
            if not package.exists():
                os.rename(entry, package)
            else:
                shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(".") and entry.name.endswith(".py.tmp") and entry.is_file():
            entry.unlink(missing_ok=True)  # a single-file write killed before its rename
    if package.is_dir() and not package.is_symlink():
        for entry in package.iterdir():
            if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file():
                entry.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders atomically (Linux renameat2 RENAME_EXCHANGE); False where the system has no such call."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # this file system cannot exchange: two renames instead
    raise OSError(code, os.strerror(code), str(b))

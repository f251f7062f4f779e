"""Exclusive use of a run directory or an attack's cache by one process at a time.

Two processes writing the same run (``robustpo train --resume RUN`` started twice) or training
the same learned attack's models would overwrite each other's checkpoints. Each writer holds an
operating-system file lock (:mod:`filelock`) while it works; the lock is released when the
process ends, however it ends, so a killed run never leaves a stale lock behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import BusyError

RUN_LOCK_FILE = ".lock"


@contextmanager
def exclusive(lock_file: Path, what: str) -> Iterator[None]:
    """Hold ``lock_file`` (created with its parent directories if missing) for the block.

    Args:
        lock_file: the lock's path; the same path in every process that uses ``what``.
        what: what the lock guards, for the error message (e.g. ``"run directory runs/x"``).

    Raises:
        BusyError: another process (or another holder in this one) holds the lock; nothing
            was changed.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_file, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise BusyError(what, lock_file) from None
    try:
        yield
    finally:
        lock.release()

"""File modes for the service's state: results, secrets and the audit log are its owner's only.

The state directory is 0700 and every file in it 0600, whatever the process's umask was, so no
other local account can read anyone's results or tokens, or remove the audit trail.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` as a 0700 directory, or tighten an existing one of ours (an install from
    before this was 0755). A shared directory (sticky, like /tmp) is refused: tightening it
    would break the machine. One owned by another account (a Kubernetes emptyDir, in a pod of
    one user) cannot be tightened and is left, with a warning; its files are still 0600."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_mode & stat.S_ISVTX:
        raise ValueError(f"{path} is a shared directory; the state needs one of its own")
    if stat.S_IMODE(info.st_mode) != PRIVATE_DIR:
        if info.st_uid == os.geteuid():
            path.chmod(PRIVATE_DIR)
        else:
            log.warning("%s belongs to another account; cannot make it 0700", path)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 if missing; tighten it if it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
    return path


def write_private(path: Path, text: str) -> bool:
    """Replace ``path`` with ``text`` atomically, mode 0600. Returns whether it changed."""
    try:
        if path.read_text() == text:
            private_file(path)
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)
    return True


def private_sqlite(url: str) -> None:
    """Everyone's results live in the database file: it and its ``-wal`` and ``-shm`` files are
    0600. The database is created 0600 before SQLite opens it (tightened if an older install
    left it 0644); SQLite gives the files it creates beside it the database's mode, whatever
    the umask. (No process-wide umask: sandbox code directories must stay readable.) A missing
    directory is left to SQLite to refuse, like a database that is down."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if not path.parent.is_dir():
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        sibling = path.with_name(path.name + suffix)
        if suffix == "" or sibling.exists():
            private_file(sibling)

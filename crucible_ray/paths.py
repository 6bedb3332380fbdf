"""Where crucible keeps its state on a machine: one root, ``CRUCIBLE_STATE_DIR``.

Everything lives under it (sandbox code directories and ledgers, the default SQLite store, the
generated JWT secret, the local cluster's files), so moving it moves everything.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_STATE_DIR = Path("/var/lib/crucible")


def state_dir() -> Path:
    """The configured state directory (read when called, so a changed variable is seen)."""
    return Path(os.environ.get("CRUCIBLE_STATE_DIR") or DEFAULT_STATE_DIR)


def sandboxes_dir(root: Path | None = None) -> Path:
    """Where SandboxRunners keep one directory per owner (code and container ledger)."""
    return (root or state_dir()) / "sandboxes"

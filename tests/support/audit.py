"""Reading the audit events Ray workers of the session's cluster printed (their stdout)."""

from __future__ import annotations

import json
from pathlib import Path


def audit_events(eval_id: str, event: str) -> list[dict]:
    """Every ``event`` line about ``eval_id`` in the cluster's worker logs, parsed."""
    import ray

    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
    found = []
    for path in logs.glob("worker-*.out"):
        for line in path.read_text(errors="replace").splitlines():
            if eval_id in line and f'"event": "{event}"' in line:
                found.append(json.loads(line[line.index("{") :]))
    return found

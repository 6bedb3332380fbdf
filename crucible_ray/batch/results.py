"""The batch output: JSON Lines appended and flushed one result at a time, so a crash loses
at most the evaluations in flight; ``resume`` reads back which ids are done."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crucible_ray.errors import CrucibleError

FSYNC_EVERY_S = 1.0


class BatchError(CrucibleError):
    """The batch job cannot start or go on (bad OUTPUT, unreadable input...)."""


def key_digest(key: str) -> bytes:
    """Ids are remembered as 16-byte digests: ~100 bytes each instead of the id itself."""
    return hashlib.blake2b(key.encode(), digest_size=16).digest()


class ResultsFile:
    def __init__(self, path: Path, *, resume: bool = False, overwrite: bool = False) -> None:
        self.path = path
        self.job_path = path.with_name(path.name + ".job")
        exists = path.exists() and path.stat().st_size > 0
        if exists and not (resume or overwrite):
            raise BatchError(f"{path} already has results: --resume to continue, or --overwrite")
        if overwrite or not (exists or resume):  # a new job: new evaluation ids
            path.write_bytes(b"")
            self.job_path.unlink(missing_ok=True)
        elif exists:
            self._drop_partial_line()
        else:
            path.touch()  # resumed before its first result: same job token, same ids
        self.job_token = self._job_token()
        self._file = path.open("ab")
        self._synced_at = time.monotonic()

    def done(self) -> Iterator[bytes]:
        """Digests of the ids already in the file."""
        with self.path.open("rb") as f:
            for number, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    yield key_digest(str(json.loads(raw)["id"]))
                except (ValueError, KeyError, TypeError):
                    raise BatchError(f"{self.path}:{number} is not a result line") from None

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
        self._file.flush()  # in the OS once written: a killed job keeps it
        if time.monotonic() - self._synced_at >= FSYNC_EVERY_S:  # on disk, now and then
            os.fsync(self._file.fileno())
            self._synced_at = time.monotonic()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def _drop_partial_line(self) -> None:
        """A job killed while writing may leave half a line: cut it (that id runs again)."""
        with self.path.open("rb+") as f:
            size = f.seek(0, os.SEEK_END)
            position = size
            while position > 0:
                step = min(65536, position)
                f.seek(position - step)
                chunk = f.read(step)
                newline = chunk.rfind(b"\n")
                if newline >= 0:
                    position = position - step + newline + 1
                    break
                position -= step
            if position != size:
                f.truncate(position)

    def _job_token(self) -> str:
        """Evaluation ids derive from this token, so a resumed job finds its evaluations
        still queued or running on the cluster instead of starting them again."""
        try:
            return json.loads(self.job_path.read_text())["token"]
        except (OSError, ValueError, KeyError):
            token = uuid.uuid4().hex
            self.job_path.write_text(json.dumps({"token": token, "output": str(self.path)}))
            return token

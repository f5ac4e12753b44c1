"""Where a connector resumes after a crash: one small JSON file, replaced atomically."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class CheckpointStore:
    """Loads and saves one connector's resume position.

    `save` writes a temporary file, fsyncs it and renames it over the old one, so a crash leaves
    either the previous or the new checkpoint on disk, never a torn file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Any | None:
        try:
            envelope = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        return envelope["position"]

    def save(self, position: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        payload = json.dumps({"v": 1, "saved_at": time.time(), "position": position}, ensure_ascii=False)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

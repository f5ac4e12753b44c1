"""On-disk embedding cache keyed by text hash, so rebuilds and re-evaluations skip the encoder.

One ``.npz`` per encoder configuration (layers, max length, prefix): changing the encoder can
never serve stale vectors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import xxhash

from pipeline.models.encoder import E5Encoder

CHUNK = 1024


class EmbeddingCache:
    def __init__(self, directory: Path, encoder: E5Encoder, config_key: str) -> None:
        self.encoder = encoder
        self.path = Path(directory) / f"{config_key}.npz"
        self._vectors: dict[int, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path) as z:
                self._vectors = dict(zip(z["keys"].tolist(), z["vectors"]))

    def encode(self, texts: Sequence[str], prefix: str, *,
               progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Vectors of `texts`; `progress(done, total)` after each chunk the encoder embedded."""
        keys = [xxhash.xxh3_64_intdigest((prefix + t).encode("utf-8")) for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._vectors))
        if missing:
            text_of = dict(zip(keys, texts))
            for start in range(0, len(missing), CHUNK):
                chunk = missing[start:start + CHUNK]
                vectors = self.encoder.encode([text_of[k] for k in chunk], prefix)
                self._vectors.update(zip(chunk, vectors))
                self._save()  # an interrupted build keeps what it embedded
                if progress:
                    progress(min(start + CHUNK, len(missing)), len(missing))
        if not keys:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._vectors), dtype=np.uint64)
        vectors = np.stack(list(self._vectors.values())).astype(np.float32)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vectors=vectors)
        tmp.replace(self.path)

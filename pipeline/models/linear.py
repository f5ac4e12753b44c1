"""A softmax-regression head over embeddings: the one trainable piece shared by topic and sentiment.

Training is full-batch L-BFGS in torch (a convex problem, so it converges like sklearn's) (small data: a few thousand rows x 384 dims) with class-balanced
weights and an L2 pull towards an initial weight matrix, so a head initialised from label
prototypes stays close to its zero-shot behaviour for labels with few or no examples.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class SoftmaxHead:
    classes: tuple[str, ...]
    weight: np.ndarray  # (n_classes, dim)
    bias: np.ndarray  # (n_classes,)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return x @ self.weight.T + self.bias

    def proba(self, x: np.ndarray) -> np.ndarray:
        z = self.logits(x)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, x: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.logits(x).argmax(axis=1)]

    def save(self, path: Path) -> None:
        np.savez(path, classes=np.array(self.classes), weight=self.weight, bias=self.bias)

    @classmethod
    def load(cls, path: Path) -> "SoftmaxHead":
        with np.load(path) as z:
            return cls(tuple(str(c) for c in z["classes"]), z["weight"].astype(np.float32),
                       z["bias"].astype(np.float32))


def fit_softmax(x: np.ndarray, labels: Sequence[str], classes: Sequence[str], *,
                init: SoftmaxHead | None = None, l2: float = 1e-4, steps: int = 500,
                sample_weight: np.ndarray | None = None, seed: int = 0) -> SoftmaxHead:
    """Fit W, b minimising class-balanced cross-entropy + l2 * ||W - W_init||^2 (deterministic)."""
    import torch

    torch.manual_seed(seed)
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({lab for lab in labels if lab not in index})
    if unknown:
        raise ValueError(f"labels not in classes: {unknown}")
    y = torch.tensor([index[lab] for lab in labels], dtype=torch.long)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    counts = torch.bincount(y, minlength=len(classes)).clamp(min=1).float()
    weights = (len(y) / (len(classes) * counts))[y]
    if sample_weight is not None:
        weights = weights * torch.from_numpy(np.asarray(sample_weight, dtype=np.float32))
    weights = weights / weights.sum()
    if init is None:
        w0 = torch.zeros(len(classes), x.shape[1])
        b0 = torch.zeros(len(classes))
    else:
        w0, b0 = torch.from_numpy(init.weight.copy()), torch.from_numpy(init.bias.copy())
    w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure():
        opt.zero_grad()
        loss = (torch.nn.functional.cross_entropy(xt @ w.T + b, y, reduction="none") * weights).sum()
        loss = loss + l2 * ((w - w0) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return SoftmaxHead(tuple(classes), w.detach().numpy().astype(np.float32),
                       b.detach().numpy().astype(np.float32))

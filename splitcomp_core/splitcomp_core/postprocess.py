"""Class scores to results: softmax, top-k and label names.

The tail node publishes softmax probabilities best first; this module is the one place that turns
the tail's output row into those (class id, score) pairs and attaches human-readable labels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from splitcomp_core.errors import BundleError

KINDS = ("logits", "probabilities")


def load_labels(path: str | os.PathLike) -> list[str]:
    """Read class names from a JSON list, or an ImageNet class_index.json ({"0": ["n01440764", "tench"]})."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: cannot read the labels file ({exc})") from exc
    return parse_labels(data, origin=str(path))


def parse_labels(data: Any, origin: str = "labels") -> list[str]:
    """Labels from already-parsed JSON; a mapping must have the keys "0".."N-1", and its values'
    last string (the human-readable name in ImageNet's class_index.json) becomes the label."""
    if isinstance(data, list) and all(isinstance(v, str) for v in data):
        return list(data)
    if isinstance(data, dict):
        expected = [str(i) for i in range(len(data))]
        if sorted(data, key=lambda k: (len(k), k)) != expected:
            raise BundleError(f'{origin}: a labels mapping needs the keys "0" to "{len(data) - 1}", each once')
        labels = [_label_of(data[key]) for key in expected]
        bad = [key for key, label in zip(expected, labels) if label is None]
        if not bad:
            return [label for label in labels if label is not None]
        raise BundleError(f"{origin}: labels for keys {bad[:5]} are neither a string nor a list ending in a string")
    raise BundleError(
        f"{origin}: labels must be a JSON list of strings, or a mapping like ImageNet's class_index.json "
        f'{{"0": ["n01440764", "tench"], ...}}; got {type(data).__name__}'
    )


def _label_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], str):
        return value[-1]
    return None


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax that cannot overflow: the max is subtracted before exponentiating."""
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def top_k(logits_or_probs: np.ndarray, k: int, kind: str = "logits") -> list[tuple[int, float]]:
    """The k best (class id, probability) pairs, best first; ties go to the lower class id.

    `kind="probabilities"` takes the scores as they are (no second softmax). `k` larger than the
    number of classes returns every class.
    """
    scores = np.asarray(logits_or_probs)
    if scores.ndim == 0 or scores.size != scores.shape[-1] or scores.size == 0:
        raise ValueError(f"top_k needs one row of class scores, shape (C,) or (1, C); got shape {scores.shape}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    row = scores.reshape(-1)
    probs = softmax(row) if kind == "logits" else row.astype(np.float64)
    best = np.argsort(-probs, kind="stable")[:k]
    return [(int(i), float(probs[i])) for i in best]


def label_for(labels: Sequence[str] | None, class_id: int) -> str:
    """The class's name, or its id as text when there are no labels or the id is out of range."""
    if labels is not None and 0 <= class_id < len(labels):
        return labels[class_id]
    return str(class_id)


def top_k_labelled(
    logits_or_probs: np.ndarray, k: int, labels: Sequence[str] | None, kind: str = "logits"
) -> list[tuple[int, str, float]]:
    """`top_k` with each class's label: (class id, label, probability), best first."""
    return [(i, label_for(labels, i), p) for i, p in top_k(logits_or_probs, k, kind)]

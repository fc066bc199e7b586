"""Pieces ETA and breach prediction share: grouping history by case, the deterministic
holdout split, category codes, versions and the stored blob format."""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from schemas.history import StageInterval

Floats = npt.NDArray[np.float64]
MISSING = float("nan")


def by_case(intervals: Iterable[StageInterval]) -> dict[str, list[StageInterval]]:
    """Each case's intervals in time order."""
    cases: dict[str, list[StageInterval]] = {}
    for iv in intervals:
        cases.setdefault(iv.case_ref, []).append(iv)
    for visits in cases.values():
        visits.sort(key=lambda v: (v.entered_at, v.exited_at))
    return cases


def in_holdout(case_ref: str, share: float, seed: int = 0) -> bool:
    """Whether a case is held out: a hash of its reference, so the same case is always on the
    same side for the same seed, whatever else is in the file."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{case_ref}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def data_hash(intervals: Iterable[StageInterval]) -> str:
    """A digest of the history a model learned from (order-independent)."""
    rows = sorted(",".join(iv.as_row()) for iv in intervals)
    h = hashlib.sha256()
    for row in rows:
        h.update(row.encode())
        h.update(b"\n")
    return h.hexdigest()


def make_version(fitted_at: datetime, digest: str, params: dict[str, Any]) -> str:
    """``20261201T101500Z-<12 hex>``: when, and what from (data and parameters)."""
    both = hashlib.sha256(
        (digest + json.dumps(params, sort_keys=True, default=str)).encode()
    ).hexdigest()
    return f"{fitted_at:%Y%m%dT%H%M%SZ}-{both[:12]}"


@dataclass
class Vocab:
    """Category codes for LightGBM: known values get 0..n-1, anything else NaN (missing)."""

    values: list[str]

    def __post_init__(self) -> None:
        self._codes = {v: float(i) for i, v in enumerate(self.values)}

    @classmethod
    def of(cls, seen: Iterable[str], min_count: int = 1) -> Vocab:
        counts: dict[str, int] = {}
        for v in seen:
            counts[v] = counts.get(v, 0) + 1
        return cls(sorted(v for v, c in counts.items() if c >= min_count))

    def code(self, value: str) -> float:
        return self._codes.get(value, MISSING)

    def codes(self, values: Sequence[str]) -> Floats:
        get = self._codes.get
        return np.fromiter((get(v, MISSING) for v in values), dtype=np.float64, count=len(values))


def pack(payload: dict[str, Any]) -> bytes:
    """What goes in ``learned_models.blob``: compressed JSON (LightGBM's text model format
    inside), never a pickle: loading a model runs no code from the database."""
    return zlib.compress(json.dumps(payload, separators=(",", ":")).encode(), 6)


def unpack(blob: bytes, expected_format: str) -> dict[str, Any]:
    payload = json.loads(zlib.decompress(blob))
    if not isinstance(payload, dict) or payload.get("format") != expected_format:
        found = payload.get("format") if isinstance(payload, dict) else None
        raise ValueError(f"not a {expected_format} model (format {found!r})")
    return payload


@dataclass(frozen=True)
class Record:
    """One row of ``learned_models``, as analytics hands it to the store and gets it back."""

    kind: str
    version: str
    fitted_at: datetime
    cases: int
    summary: dict[str, Any]
    blob: bytes


def precision_recall(
    predicted: npt.NDArray[np.bool_], actual: npt.NDArray[np.bool_]
) -> dict[str, float]:
    tp = int(np.sum(predicted & actual))
    fp = int(np.sum(predicted & ~actual))
    fn = int(np.sum(~predicted & actual))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "alerts": float(tp + fp)}

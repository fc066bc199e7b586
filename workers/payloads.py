"""The worker's payload converter: pydantic JSON, with the pinned case types shared.

Every case carries its pinned case type (and the types of its subprocesses, and its business
calendars) in its input, and a cached workflow run keeps that input for as long as it is cached.
Decoded, a case type is a few hundred small pydantic objects: about half of what a waiting case
costs the worker in memory. Cases of the same case type and version carry the same type, so the
worker keeps one copy of each distinct one and hands every run that copy. The models are
frozen and the engine only reads them, so sharing is safe, and a replay decodes the same
content to the same object. Measured with ``bench/scale_bench.py`` (docs/BENCHMARKS.md,
"Scale"). The SDK builds a run's payload converter inside its sandbox, but from this module's
class, so the shared copies live here, once per process.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, TypeVar, cast

from pydantic import BaseModel
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import (
    PydanticJSONPlainPayloadConverter,
    PydanticPayloadConverter,
)
from temporalio.converter import DefaultPayloadConverter, JSONPlainPayloadConverter

from schemas.contracts import EngineCaseInput

M = TypeVar("M", bound=BaseModel)

MAX_SHARED = 512
"""Distinct pinned models kept (case types x versions x calendars): far more than a
deployment has; the oldest goes first."""


class _Pinned:
    """Content -> the one shared instance (thread-safe: workflow runs decode in threads)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, BaseModel] = OrderedDict()
        self._lock = threading.Lock()

    def share(self, model: M) -> M:
        digest = hashlib.sha256(
            type(model).__qualname__.encode() + b"\0" + model.model_dump_json().encode()
        ).hexdigest()
        with self._lock:
            known = self._items.get(digest)
            if known is not None:
                self._items.move_to_end(digest)
                return cast(M, known)  # same digest: same type and content
            self._items[digest] = model
            if len(self._items) > self._size:
                self._items.popitem(last=False)
            return model

    def __len__(self) -> int:
        return len(self._items)


PINNED = _Pinned(MAX_SHARED)


def share_pinned(value: EngineCaseInput) -> EngineCaseInput:
    """The same input with its case type, subprocess types and calendars shared."""
    case_type = PINNED.share(value.case_type)
    subtypes = {k: PINNED.share(v) for k, v in value.subprocess_types.items()}
    calendars = {k: PINNED.share(v) for k, v in value.calendars.items()}
    return value.model_copy(
        update={"case_type": case_type, "subprocess_types": subtypes, "calendars": calendars}
    )


class _SharedJSON(PydanticJSONPlainPayloadConverter):
    """Pydantic JSON; a decoded case input gets the shared pinned models."""

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        value = super().from_payload(payload, type_hint)
        if isinstance(value, EngineCaseInput):
            return share_pinned(value)
        return value


class WorkerPayloadConverter(PydanticPayloadConverter):
    """``PydanticPayloadConverter`` (the same JSON on the wire) with ``_SharedJSON``."""

    def __init__(self) -> None:
        shared = _SharedJSON()
        super(PydanticPayloadConverter, self).__init__(
            *(
                shared if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )

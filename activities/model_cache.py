"""The newest stored model of one kind (``learned_models``), kept in memory by a worker.

Loaded on first use; a newer version is picked up within ``check_every`` (one small query);
a failed look keeps the model in hand (only a first look that fails raises). Shared by the
ETA and breach activities, so both reload the same way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Generic, Protocol, TypeVar

from store import learned_models
from store.db import SessionFactory

log = logging.getLogger(__name__)


class _Versioned(Protocol):
    @property
    def version(self) -> str: ...


M = TypeVar("M", bound=_Versioned)


class LatestModel(Generic[M]):
    def __init__(
        self,
        sessions: SessionFactory,
        kind: str,
        load: Callable[[bytes], M],
        *,
        check_every: timedelta = timedelta(minutes=5),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._kind = kind
        self._load = load
        self._check_every = check_every.total_seconds()
        self._clock = clock
        self._model: M | None = None
        self._checked_at: float | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> M | None:
        async with self._lock:
            now = self._clock()
            if self._checked_at is not None and now - self._checked_at < self._check_every:
                return self._model
            try:
                async with self._sessions() as session:
                    version = await learned_models.latest_version(session, self._kind)
                    if version is not None and (
                        self._model is None or self._model.version != version
                    ):
                        stored = await learned_models.get(session, self._kind, version)
                        if stored is not None:
                            self._model = await asyncio.to_thread(self._load, stored.blob)
                            log.info(
                                "%s model %s loaded (%d cases)", self._kind, version, stored.cases
                            )
            except Exception:
                if self._model is None and self._checked_at is None:
                    raise
                log.exception(
                    "%s model: could not look for a newer version; keeping %s",
                    self._kind,
                    self._model.version if self._model else "none",
                )
            self._checked_at = now
            return self._model

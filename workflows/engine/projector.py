"""Batches read-model changes so a case writes at most once per blocking point.

Elements and handlers record what changed (a visit, a pause, an element, an audit event, case
columns); ``take`` turns it into one versioned ``EngineProjection``. Handlers never do I/O: they
record here, and the waiting loop writes it after the command was accepted.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from schemas.case_state import CaseState, ElementState, ElementStatus, PauseRecord, StageVisit
from schemas.contracts import CasePatchV2, EngineProjection, EngineSeed
from schemas.projection import AuditEvent


class Projector:
    def __init__(self, state: CaseState) -> None:
        self._state = state
        self._case: dict[str, Any] = {}
        self._written_case: dict[str, Any] = {}
        self._visits: dict[int, StageVisit] = {}
        self._pauses: dict[int, PauseRecord] = {}
        self._elements: dict[str, ElementState] = {}
        self._events: list[AuditEvent] = []

    def written(self) -> CasePatchV2:
        """The case columns as last written (a continued run starts from them)."""
        return _absolute(self._written_case)

    def restore(self, written: CasePatchV2) -> None:
        self._written_case = {
            **written.model_dump(exclude_none=True, exclude={"clear"}),
            **{k: None for k in written.clear},
        }

    def case(self, **values: Any) -> None:
        """Case columns. Every projection carries all of them (absolute values), so whichever
        version lands last in Postgres is complete: a batch that rides the outbox may be
        written after a newer local-activity write, and is then ignored whole."""
        self._case.update(values)

    def _case_changed(self) -> bool:
        return any(self._written_case.get(k, object()) != v for k, v in self._case.items())

    def visit(self, visit: StageVisit) -> None:
        self._visits[visit.seq] = visit

    def pause(self, pause: PauseRecord) -> None:
        self._pauses[pause.seq] = pause

    def element(self, element: ElementState) -> None:
        """Elements the case has reached (a not-applicable one too: the audit shows a step was
        not needed); one not reached yet is nobody's task, and a message is no task at all
        (its audit event and the outbox row record it)."""
        if element.status == ElementStatus.PENDING or element.kind == "notification":
            return
        self._elements[element.key] = element

    def event(self, event: AuditEvent) -> None:
        self._events.append(event)

    def pending(self) -> bool:
        return bool(
            self._case_changed() or self._visits or self._pauses or self._elements or self._events
        )

    def take(self, now: datetime, *, seed: EngineSeed | None = None) -> EngineProjection | None:
        """Everything recorded since the last take, as one write (copies: later changes to the
        state must not alter a projection already handed to an activity)."""
        if not self.pending():
            return None
        version = self._state.next_number("projection")
        projection = EngineProjection(
            case_ref=self._state.case_ref,
            seed=seed,
            version=version,
            at=now,
            case=_absolute({**self._written_case, **self._case}),
            visits=[copy.deepcopy(v) for v in self._visits.values()],
            pauses=[copy.deepcopy(p) for p in self._pauses.values()],
            elements=[copy.deepcopy(e) for e in self._elements.values()],
            events=list(self._events),
        )
        self._written_case.update(self._case)
        self._case, self._visits, self._pauses = {}, {}, {}  # columns stay in _written_case
        self._elements, self._events = {}, []
        return projection


def _absolute(columns: dict[str, Any]) -> CasePatchV2:
    """Every column we know, with a None sent as an explicit NULL."""
    return CasePatchV2(
        **{k: v for k, v in columns.items() if v is not None},
        clear=sorted(k for k, v in columns.items() if v is None),
    )

"""What analytics needs to know about the case types: each type's home country, its stages'
SLA budgets, which stages a new case would go through (the budget fallback of the ETA), and
the office hours the staff work (calendar features).

Built from the case type registry (``playbooks.registry``) by the CLI and the worker; tests
and the bench use the shipped folder. Nothing here is stored with a model except what the
model copies out of it when it is fitted (home countries, budgets, the calendar)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from analytics.worktime import WEEKDAYS_OFFICE
from playbooks.registry import CaseTypeRegistry, folders_from_setting
from schemas.calendar import CalendarDef
from schemas.casetype import CaseType
from schemas.conditions import ruled_out_at_open
from schemas.history import CaseFacts

OFFICE_CALENDAR = "uk_business_hours"
"""The staff's working hours when a case type names no calendar of its own."""


@dataclass(frozen=True)
class CaseTypes:
    types: dict[str, CaseType]
    calendars: dict[str, CalendarDef]

    @classmethod
    def from_registry(cls, registry: CaseTypeRegistry) -> CaseTypes:
        return cls({n: registry.get(n) for n in registry.names()}, dict(registry.calendars))

    @classmethod
    def load(cls, extra: Any = None) -> CaseTypes:
        """The shipped case types plus ``extra`` folders (the ``CASE_TYPE_DIRS_EXTRA``
        setting's shape)."""
        return cls.from_registry(CaseTypeRegistry.load(folders_from_setting(extra)))

    def home_country(self, case_type: str) -> str:
        known = self.types.get(case_type)
        return known.home_country.upper() if known else "GB"

    def budget_seconds(self, case_type: str, stage: str) -> float | None:
        known = self.types.get(case_type)
        if known is None:
            return None
        for s in known.stages:
            if s.key == stage:
                return s.sla.total_seconds() if s.sla is not None else None
        return None

    def budgets(self) -> dict[str, dict[str, float]]:
        """``{case_type: {stage: SLA seconds}}`` for every stage with an SLA."""
        return {
            name: {s.key: s.sla.total_seconds() for s in t.stages if s.sla is not None}
            for name, t in self.types.items()
        }

    def route(self, facts: CaseFacts) -> list[tuple[str, float | None]] | None:
        """The stages a case with these facts would go through, each with its SLA in seconds
        (None: no SLA). A stage is left out only when its ``when`` reads nothing but the
        client profile and ``international`` and does not hold; one that depends on later
        data (a screening result, a field) is counted. None for an unknown case type."""
        known = self.types.get(facts.case_type)
        if known is None:
            return None
        fields = {
            "client": {
                "client_type": facts.client_type,
                "tier": facts.tier,
                "country": facts.country,
                "regulatory_requirements": list(facts.service_requirements),
            },
            "international": facts.country.upper() != known.home_country.upper(),
        }
        return [
            (s.key, s.sla.total_seconds() if s.sla is not None else None)
            for s in known.stages
            if not ruled_out_at_open(s.when, fields, {"client", "international"})
        ]

    def budget_hours(self, facts: CaseFacts) -> float | None:
        """Sum of the SLA budgets along ``route(facts)``, in hours (None: unknown type)."""
        stages = self.route(facts)
        if stages is None:
            return None
        return sum(b for _, b in stages if b is not None) / 3600

    def office_calendar(self) -> CalendarDef:
        return self.calendars.get(OFFICE_CALENDAR, WEEKDAYS_OFFICE)


@functools.cache
def shipped() -> CaseTypes:
    """The case types in ``playbooks/case_types`` (loaded once per process)."""
    return CaseTypes.load()

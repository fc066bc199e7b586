"""A one-stage case type whose 8h SLA counts in the shipped ``uk_business_hours`` calendar,
shared by the engine (time-skipping) and API tests of business hours."""

from __future__ import annotations


def office_type(*, warn_at: float = 0.8) -> str:
    """The ``office_hours_review`` case type as YAML; ``warn_at`` moves its one warning."""
    return f"""\
name: office_hours_review
version: "1"
title: Reviewed in office hours
calendar: uk_business_hours
stages:
  - key: review
    title: Review
    owner_role: case_manager
    sla: 8h
    warn_at: [{warn_at}]
    escalations:
      - {{level: 1, after_breach: 0h, target: onboarding_lead}}
    elements:
      - {{key: look_at_it, kind: task, title: Look at it, assignee_role: case_manager}}
"""

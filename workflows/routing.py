"""Client profile + playbook -> the case's plan. Pure and deterministic, so it is unit-testable
and its result can be pinned in workflow history."""

from __future__ import annotations

from schemas.client import ClientProfile
from schemas.plan import CasePlan, Playbook, RoutingCondition, StageSpec, TaskKind, TaskSpec


def matches(condition: RoutingCondition, profile: ClientProfile, home_country: str) -> bool:
    """True when every field the condition sets holds for this client."""
    if condition.client_type is not None and profile.client_type not in condition.client_type:
        return False
    if condition.tier is not None and profile.tier not in condition.tier:
        return False
    if condition.country is not None and profile.country not in {
        c.upper() for c in condition.country
    }:
        return False
    if condition.international is not None:
        is_international = profile.country.upper() != home_country.upper()
        if is_international != condition.international:
            return False
    return True


def build_plan(playbook: Playbook, profile: ClientProfile) -> CasePlan:
    """Apply the playbook's routing rules and regulatory checks to one client."""
    stages: list[StageSpec] = list(playbook.stages)
    extra_tasks: dict[str, list[TaskSpec]] = {}
    flags: list[str] = []
    applied: list[str] = []

    for rule in playbook.routing:
        if not matches(rule.when, profile, playbook.home_country):
            continue
        applied.append(rule.name)
        flags.extend(f for f in rule.flags if f not in flags)
        for add in rule.add_stages:
            if any(s.stage == add.stage.stage for s in stages):
                continue
            anchor = next(i for i, s in enumerate(stages) if s.stage == add.after)
            stages.insert(anchor + 1, add.stage)
        for add_task in rule.add_tasks:
            extra_tasks.setdefault(add_task.stage, []).append(add_task.task)

    for requirement in profile.regulatory_requirements:
        checks = playbook.requirement_checks.get(requirement) or [
            TaskSpec(
                key=f"check_{requirement.replace('-', '_')}",
                title=f"Regulatory check: {requirement}",
                kind=TaskKind.MANUAL,
                assignee_role="compliance_reviewer",
            )
        ]
        extra_tasks.setdefault(playbook.requirement_checks_stage, []).extend(checks)
        applied.append(f"requirement:{requirement}")

    planned: list[StageSpec] = []
    for spec in stages:
        added = extra_tasks.get(spec.stage, [])
        if added:
            tasks = list(spec.tasks)
            for task in added:  # two rules may add the same task (EDD): keep it once
                if task.key not in {t.key for t in tasks}:
                    tasks.append(task)
            spec = spec.model_copy(update={"tasks": tasks})
        planned.append(spec)

    return CasePlan(
        playbook_version=playbook.version,
        stages=planned,
        flags=flags,
        applied_rules=applied,
        document_checklist=list(playbook.document_checklists.get(profile.client_type, [])),
        messaging=playbook.messaging,
    )

"""Which subprocess case types a new case carries in its (pinned) input."""

from __future__ import annotations

from playbooks.registry import CaseTypeRegistry, pinned_subprocess_types
from schemas.casetype import Condition
from schemas.conditions import ruled_out_at_open


def client(**overrides: str) -> dict[str, object]:
    base: dict[str, object] = {"client_type": "individual", "country": "GB", "tier": "standard"}
    return {**base, **overrides}


def test_an_individual_onboarding_case_does_not_carry_the_security_review_type():
    registry = CaseTypeRegistry.load()
    onboarding = registry.get("client_onboarding")
    assert pinned_subprocess_types(registry, onboarding, client=client()) == {}


def test_an_enterprise_case_carries_it_and_without_the_facts_every_one_is_pinned():
    registry = CaseTypeRegistry.load()
    onboarding = registry.get("client_onboarding")
    enterprise = pinned_subprocess_types(
        registry, onboarding, client=client(client_type="enterprise")
    )
    assert list(enterprise) == ["security_review"]
    assert enterprise["security_review"] == registry.get("security_review")
    assert list(pinned_subprocess_types(registry, onboarding)) == ["security_review"]


def test_only_a_condition_on_opening_facts_rules_a_step_out():
    fields = {"client": client(), "international": False, "amount": 10}
    static = {"client", "international", "amount"}
    on_profile = Condition.model_validate({"field": "client.client_type", "eq": "enterprise"})
    on_output = Condition.model_validate({"field": "screening.risk_level", "eq": "high"})
    mixed = Condition.model_validate({"any": [on_profile.model_dump(), on_output.model_dump()]})
    assert ruled_out_at_open(on_profile, fields, static)
    assert not ruled_out_at_open(on_output, fields, static)  # known only later
    assert not ruled_out_at_open(mixed, fields, static)
    assert not ruled_out_at_open(None, fields, static)

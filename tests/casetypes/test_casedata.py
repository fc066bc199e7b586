"""validate_case_data: POST /cases `data` checked against the case type's declared fields."""

from __future__ import annotations

import json
from typing import Any

import pytest

from playbooks.registry import CaseTypeRegistry, folders_from_setting
from schemas.casedata import MAX_KEYS, CaseDataError, validate_case_data
from schemas.casetype import CaseType

REGISTRY = CaseTypeRegistry.load(folders_from_setting("tests/fixtures/case_types"))
ORDER = REGISTRY.get("order_approval")
GOOD_ORDER = {"order_id": "ORD-1001", "order_value": 60000, "currency": "GBP", "items": 3}


def errors_of(case_type: CaseType, data: Any) -> dict[str, dict[str, Any]]:
    with pytest.raises(CaseDataError) as info:
        validate_case_data(case_type, data)
    errors = info.value.errors
    json.dumps(errors)  # a 422 detail must encode
    assert all(e["loc"][:2] == ["body", "data"] for e in errors)
    return {"/".join(e["loc"][2:]): e for e in errors}


def test_good_order_is_accepted() -> None:
    assert validate_case_data(ORDER, GOOD_ORDER) == GOOD_ORDER
    assert validate_case_data(ORDER, {"order_id": "A", "order_value": 0.5}) == {
        "order_id": "A",
        "order_value": 0.5,
    }


def test_whole_number_float_is_an_integer_and_null_is_absent() -> None:
    data = {**GOOD_ORDER, "items": 3.0, "currency": None}
    clean = validate_case_data(ORDER, data)
    assert clean["items"] == 3 and isinstance(clean["items"], int)
    assert "currency" not in clean


def test_missing_required() -> None:
    errors = errors_of(ORDER, {"currency": "EUR"})
    assert errors["order_id"]["type"] == "missing"
    assert errors["order_value"]["msg"] == "Field required"


@pytest.mark.parametrize(
    ("key", "value", "type_"),
    [
        ("order_value", "lots", "float_type"),
        ("order_value", True, "float_type"),
        ("order_value", float("nan"), "finite_number"),
        ("items", 2.5, "int_type"),
        ("items", "3", "int_type"),
        ("order_id", 42, "string_type"),
        ("order_value", -1, "greater_than_equal"),
        ("items", 10_001, "less_than_equal"),
        ("order_id", "x" * 65, "string_too_long"),
        ("order_id", "   ", "string_too_short"),
    ],
)
def test_wrong_types_and_bounds(key: str, value: Any, type_: str) -> None:
    errors = errors_of(ORDER, {**GOOD_ORDER, key: value})
    assert list(errors) == [key]
    assert errors[key]["type"] == type_


def test_unknown_key() -> None:
    errors = errors_of(ORDER, {**GOOD_ORDER, "colour": "red"})
    assert errors["colour"] == {
        "loc": ["body", "data", "colour"],
        "msg": "Extra inputs are not permitted",
        "type": "extra_forbidden",
    }


def test_unknown_key_with_a_lone_surrogate_is_echoed_safely() -> None:
    errors = errors_of(ORDER, {**GOOD_ORDER, "bad\ud800": 1})
    (key,) = errors
    assert "\ud800" not in key and errors[key]["type"] == "extra_forbidden"


@pytest.mark.parametrize("text", ["ORD\x00-1", "ORD\ud800", "ORD\x1b[31m"])
def test_control_characters_and_surrogates_in_strings(text: str) -> None:
    errors = errors_of(ORDER, {**GOOD_ORDER, "order_id": text})
    assert errors["order_id"]["type"] == "value_error"


def test_enum_value_outside_its_list() -> None:
    errors = errors_of(ORDER, {**GOOD_ORDER, "currency": "JPY"})
    assert errors["currency"]["type"] == "enum"
    assert "'GBP', 'EUR', 'USD'" in errors["currency"]["msg"]


@pytest.mark.parametrize("value", ["2026-02-30", "2026-13-01", "01/02/2026", "2026-1-1", 20260101])
def test_bad_date(value: Any) -> None:
    vendor = REGISTRY.get("vendor_due_diligence")
    errors = errors_of(vendor, {"vendor_name": "Acme", "contract_start": value})
    assert errors["contract_start"]["type"].startswith("date_")


def test_good_date_and_boolean() -> None:
    vendor = REGISTRY.get("vendor_due_diligence")
    data = {"vendor_name": "Acme", "contract_start": "2028-02-29", "high_risk": False}
    assert validate_case_data(vendor, data) == data
    errors = errors_of(vendor, {"vendor_name": "Acme", "high_risk": "no"})
    assert errors["high_risk"]["type"] == "bool_type"


def test_every_problem_reported_at_once() -> None:
    errors = errors_of(ORDER, {"order_value": "x", "currency": "JPY", "extra": 1})
    assert set(errors) == {"order_id", "order_value", "currency", "extra"}
    with pytest.raises(CaseDataError, match="order_id: Field required"):
        validate_case_data(ORDER, {"order_value": 1})


def test_too_many_keys_and_not_a_mapping() -> None:
    data = {f"k{i}": i for i in range(MAX_KEYS + 1)}
    errors = errors_of(ORDER, data)
    assert errors[""]["type"] == "too_long"
    assert errors_of(ORDER, ["order_id"])[""]["type"] == "dict_type"


def test_return_request_fields() -> None:
    returns = REGISTRY.get("return_request")
    ok = {"order_id": "ORD-9", "return_type": "refund", "has_receipt": True, "amount": 120.5}
    assert validate_case_data(returns, ok) == ok
    errors = errors_of(returns, {"order_id": "ORD-9", "return_type": "swap"})
    assert errors["return_type"]["type"] == "enum"
    assert errors["has_receipt"]["type"] == "missing"

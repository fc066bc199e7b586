"""Validate ``POST /cases`` ``data`` against the case type's declared fields.

Errors look like pydantic's (``{"loc": ["body", "data", key], "msg": ..., "type": ...}``) so the
API returns them as a 422 ``detail`` next to its own validation errors. Every problem is
reported at once, not just the first.
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any

from schemas.casetype import CaseType, FieldDef
from schemas.text import check_text

MAX_KEYS = 50
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
LOC = ("body", "data")


class CaseDataError(ValueError):
    """``errors``: pydantic-style error dicts, ready for a 422 ``detail``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors
        summary = "; ".join(
            f"{'.'.join(map(str, e['loc'][2:])) or 'data'}: {e['msg']}" for e in errors
        )
        super().__init__(f"invalid case data: {summary}")


def _error(key: str | None, msg: str, type_: str, **ctx: Any) -> dict[str, Any]:
    loc: list[str] = [*LOC] if key is None else [*LOC, key]
    err: dict[str, Any] = {"loc": loc, "msg": msg, "type": type_}
    if ctx:
        err["ctx"] = ctx
    return err


def _safe_key(key: Any) -> str:
    """A key as it may be echoed back: unknown keys can hold anything, and a lone surrogate in
    a 422 body would break the JSON encoder."""
    text = key if isinstance(key, str) else repr(key)
    try:
        check_text(text, multiline=False)
        ok = len(text) <= 100
    except ValueError:
        ok = False
    return text if ok else ascii(text)[1:-1][:100]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(name: str, spec: FieldDef, value: Any) -> tuple[Any, dict[str, Any] | None]:
    if spec.type == "integer":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            return None, _error(name, "Input should be a valid integer", "int_type")
    elif not _is_number(value):
        return None, _error(name, "Input should be a valid number", "float_type")
    elif not math.isfinite(value):
        return None, _error(name, "Input should be a finite number", "finite_number")
    if spec.minimum is not None and value < spec.minimum:
        return None, _error(
            name,
            f"Input should be greater than or equal to {_fmt(spec.minimum)}",
            "greater_than_equal",
            ge=spec.minimum,
        )
    if spec.maximum is not None and value > spec.maximum:
        return None, _error(
            name,
            f"Input should be less than or equal to {_fmt(spec.maximum)}",
            "less_than_equal",
            le=spec.maximum,
        )
    return value, None


def _fmt(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def _check(name: str, spec: FieldDef, value: Any) -> tuple[Any, dict[str, Any] | None]:
    """The clean value, or an error."""
    if spec.type in ("integer", "number"):
        return _number(name, spec, value)
    if spec.type == "boolean":
        if not isinstance(value, bool):
            return None, _error(name, "Input should be a valid boolean", "bool_type")
        return value, None
    if not isinstance(value, str):
        kind = {"date": "date", "enum": "string"}.get(spec.type, "string")
        if kind == "date":
            return None, _error(name, "Input should be a date (YYYY-MM-DD)", "date_type")
        return None, _error(name, "Input should be a valid string", "string_type")
    try:
        check_text(value)
    except ValueError as exc:
        return None, _error(name, f"Value error, {exc}", "value_error")
    if spec.type == "date":
        if not _DATE.match(value):
            return None, _error(name, "Input should be a date (YYYY-MM-DD)", "date_from_string")
        try:
            date.fromisoformat(value)
        except ValueError:
            return None, _error(name, f"Input should be a real date, not {value}", "date_parsing")
        return value, None
    if spec.type == "enum":
        if value not in spec.values:
            allowed = ", ".join(repr(v) for v in spec.values)
            return None, _error(
                name, f"Input should be one of {allowed}", "enum", expected=spec.values
            )
        return value, None
    if spec.required and not value.strip():
        return None, _error(
            name, "String should have at least 1 character", "string_too_short", min_length=1
        )
    if len(value) > spec.max_length:
        return None, _error(
            name,
            f"String should have at most {spec.max_length} characters",
            "string_too_long",
            max_length=spec.max_length,
        )
    return value, None


def validate_case_data(case_type: CaseType, data: Any) -> dict[str, Any]:
    """``data`` checked against ``case_type.fields``; returns the clean values (a key with value
    ``None`` counts as absent). Raises ``CaseDataError`` with every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CaseDataError([_error(None, "Input should be a valid dictionary", "dict_type")])
    if len(data) > MAX_KEYS:
        raise CaseDataError(
            [
                _error(
                    None,
                    f"Dictionary should have at most {MAX_KEYS} items after validation, "
                    f"not {len(data)}",
                    "too_long",
                    max_length=MAX_KEYS,
                )
            ]
        )
    errors: list[dict[str, Any]] = []
    clean: dict[str, Any] = {}
    for key, value in data.items():
        spec = case_type.fields.get(key) if isinstance(key, str) else None
        if spec is None:
            errors.append(
                _error(_safe_key(key), "Extra inputs are not permitted", "extra_forbidden")
            )
            continue
        if value is None:
            continue
        checked, error = _check(key, spec, value)
        if error is not None:
            errors.append(error)
        else:
            clean[key] = checked
    for name, spec in case_type.fields.items():
        if spec.required and data.get(name) is None:
            errors.append(_error(name, "Field required", "missing"))
    if errors:
        raise CaseDataError(errors)
    return clean


__all__ = ["MAX_KEYS", "CaseDataError", "validate_case_data"]

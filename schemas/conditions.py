"""Evaluate a case type's ``when`` conditions over case fields. Pure and deterministic."""

from __future__ import annotations

from typing import Any

from schemas.casetype import Condition

_MISSING = object()


def lookup(fields: dict[str, Any], path: str) -> Any:
    """``client.tier`` -> fields['client']['tier']; a missing step gives ``_MISSING``."""
    value: Any = fields
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def resolve_argument(fields: dict[str, Any], spec: str) -> Any:
    """An automation input: '=literal' is the literal text, anything else a field path."""
    if spec.startswith("="):
        return spec[1:]
    value = lookup(fields, spec)
    return None if value is _MISSING else value


def holds(condition: Condition | None, fields: dict[str, Any]) -> bool:
    """True when there is no condition, or when it holds for these fields."""
    if condition is None:
        return True
    if condition.all_ is not None:
        return all(holds(c, fields) for c in condition.all_)
    if condition.any_ is not None:
        return any(holds(c, fields) for c in condition.any_)
    if condition.not_ is not None:
        return not holds(condition.not_, fields)
    assert condition.field is not None
    value = lookup(fields, condition.field)
    if condition.exists is not None:
        present = value is not _MISSING and value not in (None, "", [], {})
        return present == condition.exists
    if value is _MISSING or value is None:
        return condition.ne is not None or condition.not_in is not None
    if condition.eq is not None:
        return bool(_same(value, condition.eq))
    if condition.ne is not None:
        return not _same(value, condition.ne)
    if condition.in_ is not None:
        return any(_same(value, v) for v in condition.in_)
    if condition.not_in is not None:
        return not any(_same(value, v) for v in condition.not_in)
    if condition.contains is not None:
        return isinstance(value, list | str) and condition.contains in value
    number = _number(value)
    if number is None:
        return False
    if condition.gt is not None:
        return number > condition.gt
    if condition.gte is not None:
        return number >= condition.gte
    if condition.lt is not None:
        return number < condition.lt
    if condition.lte is not None:
        return number <= condition.lte
    return False


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(b, str) and str(a).lower() == b.lower())
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return str(a) == str(b)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def paths(condition: Condition | None) -> list[str]:
    """Every field path a condition reads."""
    if condition is None:
        return []
    found = [condition.field] if condition.field else []
    for child in (*(condition.all_ or []), *(condition.any_ or []), condition.not_):
        found += paths(child)
    return found


def ruled_out_at_open(
    condition: Condition | None, fields: dict[str, Any], static: set[str]
) -> bool:
    """True when the condition reads only what is fixed when the case opens (the client
    profile, ``international``, the case's data: ``static`` roots) and does not hold: the
    step can never run for this case. Anything that reads a later output may still hold."""
    if condition is None:
        return False
    if not all(p.split(".")[0] in static for p in paths(condition)):
        return False
    return not holds(condition, fields)

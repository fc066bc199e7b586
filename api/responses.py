"""The error answers routes declare in the OpenAPI schema (``responses=errors(...)``).

Every error body is ``{"detail": ...}``: one sentence, except a 422, whose detail is the list
of fields at fault (FastAPI's validation errors and ours, ``api/errors.py``) or one sentence
when the value is well formed but refused (an unknown stage, a workflow's own validation).
A route lists the codes it can answer, so a client (and the schemathesis run in
``tests/fuzz``) knows every status it may see.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorMessage(BaseModel):
    """An error: one sentence saying what is wrong (never echoing the request)."""

    detail: str


class FieldError(BaseModel):
    """One field at fault: where (``["body", "client", "name"]``), what and which rule."""

    model_config = ConfigDict(extra="allow")  # e.g. ``known`` for an unknown case type

    loc: list[str | int]
    msg: str
    type: str


class InvalidRequest(BaseModel):
    """A 422: the fields at fault, or one sentence for a well-formed value that is refused."""

    detail: list[FieldError] | str = Field(
        description="The fields at fault, or one sentence when the value is refused as a whole"
    )


RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
_WWW_AUTHENTICATE = {
    "WWW-Authenticate": {"required": True, "schema": {"type": "string"}},
}

_DEFAULTS: dict[int, dict[str, Any]] = {
    400: {"model": ErrorMessage, "description": "The body cannot be read (not UTF-8 JSON or form)"},
    401: {
        "model": ErrorMessage,
        "description": "No valid API key (X-API-Key or Bearer) or console session",
        "headers": _WWW_AUTHENTICATE,
    },
    403: {"model": ErrorMessage, "description": "The caller's role may not do this"},
    404: {"model": ErrorMessage, "description": "No such case (or item of the case)"},
    409: {"model": ErrorMessage, "description": "The case does not take this now"},
    413: {"model": ErrorMessage, "description": "The body is larger than the limit"},
    415: {"model": ErrorMessage, "description": "Unsupported content type"},
    422: {"model": InvalidRequest, "description": "Invalid input"},
    503: {
        "model": ErrorMessage,
        "description": "Postgres or Temporal is unavailable; nothing was changed, retry",
        "headers": RETRY_AFTER_HEADER,
    },
}


def errors(*codes: int, described: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route answering these error codes; ``described`` gives a more
    precise description for some of them: ``errors(404, 409, described={409: "Closed"})``."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry = dict(_DEFAULTS[code])
        if described and code in described:
            entry["description"] = described[code]
        out[code] = entry
    return out

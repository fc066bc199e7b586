"""Bounded, clean text for every request field: no control characters, no lone surrogates.

A NUL or a lone surrogate that reaches Postgres or a JSON encoder fails far from where it came
in (and used to wedge a case). Refusing it at the edge turns that into a 422 naming the field.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _clean(value: str, *, multiline: bool) -> str:
    if _SURROGATE.search(value):
        raise ValueError("contains a lone surrogate (invalid Unicode)")
    if (_CONTROL if multiline else _CONTROL_LINE).search(value):
        raise ValueError("contains control characters")
    return value


def _line(value: str) -> str:
    return _clean(value, multiline=False)


def _block(value: str) -> str:
    return _clean(value, multiline=True)


# A name, an actor, a reason code: one line.
Line = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_line),
]
# A reason or a note: may span lines (\n, \t, \r allowed), bounded.
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    AfterValidator(_block),
]
Actor = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=120),
    AfterValidator(_line),
]
Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,59}$")]


def check_text(value: str, *, multiline: bool = True) -> str:
    """The same rule for values that are not declared as ``Line``/``Text`` (case data)."""
    return _clean(value, multiline=multiline)

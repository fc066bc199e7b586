"""Does the name on a document belong to the client? The screening matcher answers it.

Why the screening matcher and not a string ratio: it already knows what a name match is —
transliteration (``Jürgen Müller`` is ``MUELLER<<JUERGEN`` in an MRZ, ``Мухаммед`` is
``MUKHAMMED``), word order (surname first in the MRZ), initials, typos, and that a middle name
on the passport but not on the application costs little while a different surname costs all.
Using the same code keeps one idea of "the same person's name" across the product.

The matcher is an index over list entries. Here the "list" is the document: one entry per
name found on it (one for an MRZ, one per text line for a utility bill), and the client's
name is screened against it. Both directions are tried for an MRZ, so extra names on either
side are forgiven alike.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from integrations.sanctions.loader import EntityType, ListEntry
from integrations.sanctions.matcher import SanctionsScreener, ScreeningSubject

NAME_MATCH = 85.0
"""The score from which a name on a document is the client's (screening's own threshold)."""

_VERSION = "document-names"
_MAX_CANDIDATES = 400  # lines of a long statement considered as names


class _QuietPairIndex(logging.Filter):
    """The matcher logs every index it builds (one per sanctions-list load). An index over
    one document is not news: those records are dropped, the others pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.args, tuple) and _VERSION in record.args)


logging.getLogger("integrations.sanctions.matcher").addFilter(_QuietPairIndex())


@dataclass(frozen=True, slots=True)
class NameMatch:
    score: float  # 0..100, the matcher's score
    matched: str | None  # the text on the document it matched best

    @property
    def same(self) -> bool:
        return self.score >= NAME_MATCH


def best_match(
    client_name: str, candidates: Sequence[str], *, entity_type: EntityType = "person"
) -> NameMatch:
    """The candidate on the document that best matches ``client_name``."""
    names = [c for c in dict.fromkeys(c.strip() for c in candidates) if c][:_MAX_CANDIDATES]
    if not names or not client_name.strip():
        return NameMatch(0.0, None)
    entries = [
        ListEntry(entry_id=str(i), list_name="document", name=name, entity_type=entity_type)
        for i, name in enumerate(names)
    ]
    index = SanctionsScreener(entries, list_version=_VERSION, threshold=0.0)
    result = index.screen(ScreeningSubject(name=client_name, entity_type=entity_type))
    if result.best is None:
        return NameMatch(0.0, None)
    return NameMatch(float(result.best.score), names[int(result.best.entry_id)])


def same_person(client_name: str, document_name: str) -> NameMatch:
    """Both directions (client against document, document against client), the better one."""
    forward = best_match(client_name, [document_name])
    backward = best_match(document_name, [client_name])
    best = max(forward.score, backward.score)
    return NameMatch(best, document_name if best > 0 else None)

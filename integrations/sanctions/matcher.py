"""Indexed fuzzy sanctions/PEP name matcher.

Why an index: the SDN list alone has ~25k name variants; comparing each query
with all of them would cap throughput at a few names per second. Instead every
distinct name token is indexed under three blocking keys:

* the token itself,
* a phonetic consonant skeleton (transliteration variants: Mohammed/Muhammad),
* its single-character deletions (SymSpell style: any one typo, insertion,
  deletion or transposition still shares a key).

A query token looks up candidate vocabulary tokens by those keys, scores them
with rapidfuzz, and the posting lists of the good ones form the candidate block.
Only the best few dozen variants of that block are aligned token-by-token.

The name score is a weighted Dice over aligned tokens: a missing middle name
costs little, a missing first name or surname costs a lot, a single matching
token out of several is capped. Date of birth and country then move the score
down on contradiction (less when the list entry simply lacks the data) and
slightly up on confirmation.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

from integrations.sanctions.loader import (
    ListEntry,
    file_digest,
    load_ofac_sdn,
    load_opensanctions,
)
from integrations.sanctions.normalize import NormalizedName, normalize_name, phonetic_key

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 85.0
"""Tuned on bench/data/screening_labelled.jsonl vs the full SDN list (docs/BENCHMARKS.md)."""

TOKEN_MIN_SIM = 0.72  # below this two tokens are treated as different words
PHONETIC_MIN_RATIO = 0.5  # a shared consonant skeleton only counts for similar spellings
HIT_FLOOR = 50.0  # weaker candidates are not reported at all
MAX_HITS = 5
SHORTLIST = 60
SINGLE_TOKEN_CAP = 65.0  # one shared word out of several is never enough on its own
WEAK_ALIAS_PENALTY = 5.0
COMPACT_MIN = 90.0  # space-free comparison only rescues near-identical spellings

# Corroborating/contradicting data, in score points.
DOB_EXACT_BONUS = 5.0
DOB_YEAR_BONUS = 3.0
DOB_NEAR_PENALTY = 4.0  # off by one year: typo or date-format confusion
DOB_MISMATCH_PENALTY = 20.0
DOB_MISSING_PENALTY = 2.0
COUNTRY_MATCH_BONUS = 3.0
COUNTRY_MISMATCH_PENALTY = 12.0
COUNTRY_MISSING_PENALTY = 1.0
NON_PERSON_PENALTY = 15.0


@dataclass(frozen=True, slots=True)
class ScreeningSubject:
    """Who is being screened; DOB and ISO2 country are optional but cut false positives."""

    name: str
    dob: dt.date | None = None
    country: str | None = None


@dataclass(frozen=True, slots=True)
class ScreeningHit:
    """One list entry that resembles the subject."""

    list_name: str
    entry_id: str
    matched_name: str
    score: float
    explanation: str


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    """Outcome of screening one subject; ``list_version`` pins the data for the audit trail."""

    decision: Literal["clear", "potential_match"]
    score: float
    best: ScreeningHit | None
    hits: list[ScreeningHit]
    list_version: str


@dataclass(frozen=True, slots=True)
class _Variant:
    entry_idx: int
    display: str
    norm: NormalizedName
    weak: bool
    primary: bool


@dataclass(slots=True)
class _Alignment:
    score: float
    pairs: list[tuple[str, str, float]]
    unmatched_query: list[str]
    unmatched_list: list[str]
    compact: bool = False


def _deletes(token: str) -> list[str]:
    return [token[:i] + token[i + 1 :] for i in range(len(token))]


_phonetic_cache: dict[str, str] = {}


def _phon(token: str) -> str:
    key = _phonetic_cache.get(token)
    if key is None:
        key = phonetic_key(token)
        if len(_phonetic_cache) < 500_000:
            _phonetic_cache[token] = key
    return key


def token_similarity(a: str, b: str) -> float:
    """0..1 similarity of two normalised tokens (typo, initial, phonetic and prefix aware)."""
    if a == b:
        return 1.0
    if len(a) == 1 or len(b) == 1:
        return 0.8 if a[0] == b[0] else 0.0
    sim = fuzz.ratio(a, b) / 100.0
    if sim >= PHONETIC_MIN_RATIO and min(len(a), len(b)) >= 3 and _phon(a) == _phon(b):
        return max(sim, 0.9)
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    if len(short) >= 4 and long_.startswith(short):
        return max(sim, 0.82)
    # On short tokens one edit already drops the ratio to ~0.75, so the ratio
    # cannot tell a typo from a different name ("Sana"/"Anas"): require <= 1 edit.
    if len(short) <= 5 and sim >= TOKEN_MIN_SIM and OSA.distance(a, b) > 1:
        return min(sim, TOKEN_MIN_SIM - 0.01)
    return sim


class SanctionsScreener:
    """Immutable, thread-safe screening index over one set of loaded list entries."""

    def __init__(
        self,
        entries: Sequence[ListEntry],
        *,
        list_version: str,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        started = time.perf_counter()
        self.threshold = float(threshold)
        self.list_version = list_version
        self._entries: list[ListEntry] = list(entries)
        self._variants: list[_Variant] = []
        self._vocab: dict[str, int] = {}
        self._vocab_tokens: list[str] = []
        self._postings: list[list[int]] = []
        self._key_index: dict[str, list[int]] = {}
        self._build()
        self.build_seconds = time.perf_counter() - started
        logger.info(
            "sanctions index built: %d entries, %d name variants, %d tokens in %.2fs (%s)",
            len(self._entries),
            len(self._variants),
            len(self._vocab_tokens),
            self.build_seconds,
            list_version,
        )

    @property
    def entry_count(self) -> int:
        return len(self._entries)

    @property
    def variant_count(self) -> int:
        return len(self._variants)

    @classmethod
    def from_files(
        cls,
        *,
        sdn: Path | None,
        alt: Path | None = None,
        opensanctions: Path | None = None,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> SanctionsScreener:
        """Load list files and build the index. At least one list must be given."""
        if sdn is None and opensanctions is None:
            raise ValueError("at least one list file (sdn or opensanctions) is required")
        entries: list[ListEntry] = []
        parts: list[str] = []
        if sdn is not None:
            ofac = load_ofac_sdn(Path(sdn), Path(alt) if alt is not None else None)
            entries.extend(ofac)
            label = f"ofac-sdn@{file_digest(Path(sdn))}"
            if alt is not None:
                label += f"+alt@{file_digest(Path(alt))}"
            parts.append(f"{label}:{len(ofac)}")
        if opensanctions is not None:
            extra = load_opensanctions(Path(opensanctions))
            entries.extend(extra)
            parts.append(f"opensanctions@{file_digest(Path(opensanctions))}:{len(extra)}")
        return cls(entries, list_version=";".join(parts), threshold=threshold)

    # ------------------------------------------------------------------ index
    def _build(self) -> None:
        for idx, entry in enumerate(self._entries):
            is_entity = entry.entity_type != "person"
            seen: set[tuple[str, ...]] = set()
            names = [(entry.name, False, True)]
            names += [(a, False, False) for a in entry.aliases]
            names += [(a, True, False) for a in entry.weak_aliases]
            for display, weak, primary in names:
                norm = normalize_name(display, is_entity=is_entity)
                if not norm.tokens or norm.tokens in seen:
                    continue
                seen.add(norm.tokens)
                self._add_variant(_Variant(idx, display, norm, weak, primary))

    def _add_variant(self, variant: _Variant) -> None:
        vidx = len(self._variants)
        self._variants.append(variant)
        for token in set(variant.norm.tokens):
            tid = self._vocab.get(token)
            if tid is None:
                tid = len(self._vocab_tokens)
                self._vocab[token] = tid
                self._vocab_tokens.append(token)
                self._postings.append([])
                for key in self._index_keys(token):
                    self._key_index.setdefault(key, []).append(tid)
            self._postings[tid].append(vidx)

    @staticmethod
    def _index_keys(token: str) -> set[str]:
        keys = {"=" + token}
        if len(token) >= 3:
            keys.add("~" + _phon(token))
        if len(token) >= 4:
            keys.add("-" + token)
            keys.update("-" + d for d in _deletes(token))
        return keys

    @staticmethod
    def _query_keys(token: str) -> set[str]:
        keys = {"=" + token}
        if len(token) >= 3:
            keys.add("~" + _phon(token))
        if len(token) >= 3:
            keys.add("-" + token)
        if len(token) >= 4:
            keys.update("-" + d for d in _deletes(token))
        return keys

    # -------------------------------------------------------------- matching
    def _candidates(self, query: NormalizedName) -> list[int]:
        """Variant ids sharing the most (and most similar) tokens with the query."""
        n = len(query.tokens)
        best: dict[int, list[float]] = {}
        for qi, qtok in enumerate(query.tokens):
            if len(qtok) < 2:
                continue  # initials are scored during alignment, too unselective to block on
            token_ids: set[int] = set()
            for key in self._query_keys(qtok):
                found = self._key_index.get(key)
                if found:
                    token_ids.update(found)
            for tid in token_ids:
                sim = token_similarity(qtok, self._vocab_tokens[tid])
                if sim < TOKEN_MIN_SIM:
                    continue
                for vidx in self._postings[tid]:
                    row = best.get(vidx)
                    if row is None:
                        row = [0.0] * n
                        best[vidx] = row
                    if sim > row[qi]:
                        row[qi] = sim
        if not best:
            return []
        ranked = sorted(
            best.items(),
            key=lambda item: (sum(1 for s in item[1] if s > 0), sum(item[1])),
            reverse=True,
        )
        return [vidx for vidx, _ in ranked[:SHORTLIST]]

    @staticmethod
    def _align(query: NormalizedName, cand: NormalizedName) -> _Alignment:
        """Greedy best-first token alignment scored as a weighted Dice coefficient."""
        pairs: list[tuple[float, int, int]] = []
        for qi, qtok in enumerate(query.tokens):
            for ci, ctok in enumerate(cand.tokens):
                sim = token_similarity(qtok, ctok)
                if sim >= TOKEN_MIN_SIM:
                    pairs.append((sim, qi, ci))
        pairs.sort(reverse=True)
        used_q: set[int] = set()
        used_c: set[int] = set()
        matched: list[tuple[str, str, float]] = []
        num = den = 0.0
        for sim, qi, ci in pairs:
            if qi in used_q or ci in used_c:
                continue
            used_q.add(qi)
            used_c.add(ci)
            weight = query.weights[qi] + cand.weights[ci]
            num += sim * weight
            den += weight
            matched.append((query.tokens[qi], cand.tokens[ci], sim))
        unmatched_q = [t for i, t in enumerate(query.tokens) if i not in used_q]
        unmatched_c = [t for i, t in enumerate(cand.tokens) if i not in used_c]
        den += sum(w for i, w in enumerate(query.weights) if i not in used_q)
        den += sum(w for i, w in enumerate(cand.weights) if i not in used_c)
        score = 100.0 * num / den if den else 0.0
        if len(matched) == 1 and max(len(query.tokens), len(cand.tokens)) > 1:
            score = min(score, SINGLE_TOKEN_CAP)
        alignment = _Alignment(score, matched, unmatched_q, unmatched_c)
        # Word-boundary differences ("Saadeddine" vs "Saad Eddine") defeat token
        # alignment; compare the space-free forms as a fallback.
        if len(query.tokens) != len(cand.tokens) and len(query.compact) >= 8 and score < 90:
            raw = fuzz.ratio(query.compact, cand.compact)
            compact = raw - 5.0
            if raw >= COMPACT_MIN and compact > score:
                alignment.score = compact
                alignment.compact = True
        return alignment

    def screen(self, subject: ScreeningSubject) -> ScreeningResult:
        """Screen one subject against every loaded list."""
        query = normalize_name(subject.name)
        if not query.tokens:
            return ScreeningResult("clear", 0.0, None, [], self.list_version)
        country = subject.country.strip().upper() if subject.country else None
        per_entry: dict[int, tuple[float, _Variant, _Alignment]] = {}
        for vidx in self._candidates(query):
            variant = self._variants[vidx]
            alignment = self._align(query, variant.norm)
            name_score = alignment.score - (WEAK_ALIAS_PENALTY if variant.weak else 0.0)
            current = per_entry.get(variant.entry_idx)
            if current is None or name_score > current[0]:
                per_entry[variant.entry_idx] = (name_score, variant, alignment)
        hits: list[ScreeningHit] = []
        for entry_idx, (name_score, variant, alignment) in per_entry.items():
            if name_score < HIT_FLOOR - 10:
                continue
            entry = self._entries[entry_idx]
            adjust, notes = _corroborate(entry, subject.dob, country)
            score = round(max(0.0, min(100.0, name_score + adjust)), 1)
            if score < HIT_FLOOR:
                continue
            hits.append(
                ScreeningHit(
                    list_name=entry.list_name,
                    entry_id=entry.entry_id,
                    matched_name=variant.display,
                    score=score,
                    explanation=_explain(
                        subject.name, entry, variant, alignment, name_score, notes
                    ),
                )
            )
        hits.sort(key=lambda h: (-h.score, h.entry_id))
        hits = hits[:MAX_HITS]
        best = hits[0] if hits else None
        top = best.score if best else 0.0
        decision: Literal["clear", "potential_match"] = (
            "potential_match" if top >= self.threshold else "clear"
        )
        return ScreeningResult(decision, top, best, hits, self.list_version)

    def screen_many(self, subjects: Iterable[ScreeningSubject]) -> list[ScreeningResult]:
        """Screen subjects in order (one result per subject)."""
        return [self.screen(subject) for subject in subjects]


def _corroborate(
    entry: ListEntry, dob: dt.date | None, country: str | None
) -> tuple[float, list[str]]:
    """Score adjustment and explanation notes from DOB, country and entity type."""
    adjust = 0.0
    notes: list[str] = []
    if dob is not None:
        if entry.entity_type != "person":
            adjust -= NON_PERSON_PENALTY
            notes.append(f"subject has a DOB but list entry is a {entry.entity_type}")
        elif not entry.dates_of_birth:
            adjust -= DOB_MISSING_PENALTY
            notes.append("no DOB on list entry")
        elif any(d.exact == dob for d in entry.dates_of_birth):
            adjust += DOB_EXACT_BONUS
            notes.append(f"DOB {dob.isoformat()} matches")
        elif any(d.year_from <= dob.year <= d.year_to for d in entry.dates_of_birth):
            adjust += DOB_YEAR_BONUS
            notes.append(f"DOB year {dob.year} matches")
        else:
            gap = min(
                min(abs(dob.year - d.year_from), abs(dob.year - d.year_to))
                for d in entry.dates_of_birth
            )
            listed = ", ".join(d.describe() for d in entry.dates_of_birth[:3])
            if gap <= 1:
                adjust -= DOB_NEAR_PENALTY
                notes.append(f"DOB year {dob.year} close to listed {listed}")
            else:
                adjust -= DOB_MISMATCH_PENALTY
                notes.append(f"DOB year {dob.year} differs from listed {listed}")
    if country:
        if not entry.countries:
            adjust -= COUNTRY_MISSING_PENALTY
            notes.append("no country on list entry")
        elif country in entry.countries:
            adjust += COUNTRY_MATCH_BONUS
            notes.append(f"country {country} matches")
        else:
            adjust -= COUNTRY_MISMATCH_PENALTY
            notes.append(f"country {country} not in listed {', '.join(entry.countries)}")
    return adjust, notes


def _explain(
    query_name: str,
    entry: ListEntry,
    variant: _Variant,
    alignment: _Alignment,
    name_score: float,
    notes: list[str],
) -> str:
    kind = "name" if variant.primary else ("weak alias" if variant.weak else "alias")
    text = f"name '{query_name}' ~ {kind} '{variant.display}'"
    if not variant.primary:
        text += f" of '{entry.name}'"
    if alignment.compact:
        detail = "spacing-insensitive"
    else:
        detail = f"{len(alignment.pairs)} tokens aligned"
        fuzzy = [f"{q}~{c}" for q, c, s in alignment.pairs if s < 1.0]
        if fuzzy:
            detail += f", fuzzy {' '.join(fuzzy)}"
        if alignment.unmatched_list:
            detail += f", list-only {' '.join(alignment.unmatched_list)}"
        if alignment.unmatched_query:
            detail += f", query-only {' '.join(alignment.unmatched_query)}"
    text += f" (name score {name_score:.0f}: {detail})"
    if notes:
        text += "; " + "; ".join(notes)
    return text

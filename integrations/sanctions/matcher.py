"""Indexed fuzzy sanctions/PEP name matcher, one name at a time or many at once.

Why an index: the SDN list alone has ~25k name variants; comparing each query
with all of them would cap throughput at a few names per second. Instead every
distinct name token is indexed under blocking keys:

* the token itself,
* a phonetic consonant skeleton (transliteration variants: Mohammed/Muhammad),
* its Arabic-script consonant skeleton (``arabic_skeleton``: a name written in Arabic
  script, unvocalised, is compared on consonants, محمد "mhmd" ~ Muhammad),
* its one-letter deletions (SymSpell style) for tokens of 4+ letters, so any one typo
  shares a key, and for words of 8+ letters their first and last five letters, so two
  typos in a long word still meet (the alignment then allows two edits there).

The new tokens of a batch look up the vocabulary tokens sharing a key and are compared
with all of them at once (rapidfuzz ``cpdist`` and numpy; cached per token). Each token
weighs by its role (a missing middle name costs little, a missing surname a lot) times
its rarity on the loaded lists (``mohammed`` or ``shipping`` say little, ``zawahiri`` a
lot). Expanding each query's similar tokens through the token postings gives every
query's weighted overlap with every variant in a few numpy operations, for one name or a
whole batch at once: a pre-score equal to the final name score for most pairs. Only the
best few variants per query, and of those only the ones that can still reach the report
floor once date of birth, country and type are counted (also in bulk), are aligned token
by token, greedily, as a weighted Dice coefficient (one-to-one words, split words,
initials). One word in common out of several is capped below the threshold; a name of one
word on each side scores by its spelling (typos allowed), never by a shared sound alone
("Thomas" is not "Tamas"). A query's numbers never depend on the batch it is in:
``screen_many`` gives exactly what ``screen`` gives, name by name.

Legal forms are not name tokens: normalisation takes them off (rigour's org-type
database) and they only corroborate. Date of birth, country, entity type and
legal form then move the score down on contradiction (less when the list entry
simply lacks the data) and slightly up on confirmation. Every hit carries its
score breakdown (which tokens and features contributed how many points) and the
threshold in force.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, Prefix

from integrations.sanctions.loader import (
    EntityType,
    ListEntry,
    entry_content_hash,
    file_digest,
    load_ofac_sdn,
    load_opensanctions,
)
from integrations.sanctions.normalize import (
    NormalizedName,
    arabic_skeleton,
    clear_transliteration_cache,
    normalize_name,
    phonetic_key,
)

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 85.0
"""Tuned on bench/data/screening_labelled.jsonl vs the full SDN list (docs/BENCHMARKS.md)."""

TOKEN_MIN_SIM = 0.72  # below this two tokens are treated as different words
PHONETIC_MIN_RATIO = 0.5  # a shared consonant skeleton only counts for similar spellings
PHONETIC_SIM = 0.9
SKELETON_SIM = 0.9  # a name written in Arabic script: same consonants as the list spelling
PREFIX_SIM = 0.82
INITIAL_SIM = 0.8
EDIT_COST = 0.6  # similarity an edit costs in a 5+ letter token, times edits / length
HIT_FLOOR = 60.0  # weaker candidates are not reported at all (was 50: noise for an audit)
MAX_HITS = 5
SHORTLIST = 6  # variants per query aligned exactly, best pre-scores first
PRESCORE_SLACK = 5.0  # how far below its alignment a pre-score may fall (split words, initials)
PRESCORE_FLOOR = 45.0  # pre-score below which a variant is not aligned (hits need 60 - bonus)
SINGLE_TOKEN_CAP = 65.0  # one shared word out of several is never enough on its own
WEAK_ALIAS_PENALTY = 5.0
COMPACT_MIN = 90.0  # space-free comparison only rescues near-identical spellings
LONG_WORD = 8  # two typos are tolerated in words this long
JOIN_MIN_SIM = 0.85  # one word ~ two words written together: typos only, no phonetics
JOIN_PART_MAX = 4  # only words this short are looked up joined with their neighbour
JOIN_MAX = 14
RARITY_FLOOR = 0.25  # weight factor of a token on every entry; a token on one entry weighs 1
TOKEN_CACHE_MAX = 200_000
NAME_CACHE_MAX = 100_000
BULK_THREADS_MIN = 20_000  # token pairs from which cpdist compares on every core
BATCH_CHUNK = 4096  # names per candidate search (at most 2**15: query rows sort as int16)

# Corroborating/contradicting data, in score points.
DOB_EXACT_BONUS = 5.0
DOB_YEAR_BONUS = 3.0
DOB_NEAR_PENALTY = 4.0  # off by one year: typo or date-format confusion
DOB_MISMATCH_PENALTY = 20.0
DOB_MISSING_PENALTY = 2.0
COUNTRY_MATCH_BONUS = 3.0
COUNTRY_MISMATCH_PENALTY = 12.0
COUNTRY_MISSING_PENALTY = 1.0
NON_PERSON_PENALTY = 15.0  # a person screened against an organisation, vessel or aircraft
NOT_A_PERSON_PENALTY = 15.0  # an organisation screened against a person
LEGAL_FORM_MATCH_BONUS = 2.0
LEGAL_FORM_MISMATCH_PENALTY = 4.0
_WILDCARD_FORMS = frozenset({"co", "corp"})  # "Company"/"Corp" go with any legal form
MAX_BONUS = DOB_EXACT_BONUS + COUNTRY_MATCH_BONUS + LEGAL_FORM_MATCH_BONUS


@dataclass(frozen=True, slots=True)
class ScreeningSubject:
    """Who is being screened; DOB, ISO2 country and type are optional but cut false positives.

    ``entity_type`` is what the client is ("person" for an individual, "entity" for a
    company); unknown, it is read from the name's legal form, or a DOB (a person).
    """

    name: str
    dob: dt.date | None = None
    country: str | None = None
    entity_type: EntityType | None = None


@dataclass(frozen=True, slots=True)
class ScoreComponent:
    """One contribution to a hit's score, for the audit trail.

    ``points`` are signed score points; the components of a hit add up to its score
    (before rounding to one decimal and clamping to 0..100, which shows as a "bounds"
    component). Token components also give the token ``similarity`` (0..1) and
    ``weight`` (role in the name times rarity on the lists).
    """

    feature: Literal[
        "token",
        "query_only_token",
        "list_only_token",
        "spacing",
        "single_token_cap",
        "one_word_spelling",
        "weak_alias",
        "legal_form",
        "entity_type",
        "dob",
        "country",
        "bounds",
    ]
    detail: str
    points: float
    similarity: float | None = None
    weight: float | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "feature": self.feature,
            "detail": self.detail,
            "points": self.points,
        }
        if self.similarity is not None:
            out["similarity"] = self.similarity
        if self.weight is not None:
            out["weight"] = self.weight
        return out


@dataclass(frozen=True, slots=True)
class ScreeningHit:
    """One list entry that resembles the subject, with how its score came about."""

    list_name: str
    entry_id: str
    matched_name: str
    score: float
    explanation: str
    breakdown: tuple[ScoreComponent, ...] = ()
    threshold: float = DEFAULT_THRESHOLD

    def as_dict(self) -> dict[str, object]:
        """Plain data for storage: the hit, its breakdown and the threshold it was judged by."""
        return {
            "list_name": self.list_name,
            "entry_id": self.entry_id,
            "matched_name": self.matched_name,
            "score": self.score,
            "explanation": self.explanation,
            "threshold": self.threshold,
            "breakdown": [c.as_dict() for c in self.breakdown],
        }


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    """Outcome of screening one subject; ``list_version`` pins the data for the audit trail."""

    decision: Literal["clear", "potential_match"]
    score: float
    best: ScreeningHit | None
    hits: list[ScreeningHit]
    list_version: str
    threshold: float = DEFAULT_THRESHOLD


@dataclass(frozen=True, slots=True)
class _Variant:
    entry_idx: int
    display: str
    norm: NormalizedName
    weak: bool
    primary: bool


class TokenMatches:
    """The vocabulary tokens similar to one query token: as arrays, and as a dict.

    The dict is built on first use: only a name that gets aligned with a shortlisted
    variant reads it, and most new tokens of a re-screen never are.
    """

    __slots__ = ("_by_id", "sims", "tids")

    def __init__(self, tids: np.ndarray, sims: np.ndarray) -> None:
        self.tids = tids
        self.sims = sims
        self._by_id: dict[int, float] | None = None

    @property
    def sims_by_id(self) -> dict[int, float]:
        by_id = self._by_id
        if by_id is None:  # two threads may both build it: the same dict, no harm
            by_id = self._by_id = dict(zip(self.tids.tolist(), self.sims.tolist(), strict=True))
        return by_id


@dataclass(frozen=True, slots=True)
class _Name:
    """What screening needs of one name against this index, whoever bears it (cached)."""

    norm: NormalizedName
    matches: list[TokenMatches]  # per query token: its similar vocabulary tokens
    rarity: list[float]  # per query token: its own rarity weight (1 if not on any list)
    total: float  # sum of the query tokens' weights
    initial: bool
    # For the candidate search, one row per (query word or joined pair, similar vocabulary
    # token): the vocabulary token, and similarity, role weight of the query word(s), their
    # own rarity (the lower of two joined words) and 1 for a word / 0 for a joined pair.
    tids: np.ndarray
    terms: np.ndarray  # shape (4, len(tids))


@dataclass(slots=True)
class _Query:
    subject: ScreeningSubject
    name: _Name
    norm: NormalizedName
    matches: list[TokenMatches]
    rarity: list[float]
    total: float
    compact: str
    initial: bool
    kind: EntityType | None
    country: str | None


_Candidate = tuple[int, float, float]  # variant, pre-score, corroboration points
# A name to look up: its normalised form, its tokens' cache keys, its joinable word pairs.
_Lookups = tuple[NormalizedName, list[str], list[tuple[int, str]]]


@dataclass(slots=True)
class _Alignment:
    score: float
    pairs: list[tuple[int, int, float, float]]  # query idx, list idx, similarity, weight
    denominator: float
    raw: float  # weighted Dice before the single-token cap (or the one-word spelling)
    compact: bool = False
    spelled: bool = False  # a one-word name scored by its spelling alone


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


def _edit_similarity(a: str, b: str) -> float:
    """Typo-only similarity: ``1 - 0.6 * edits / length`` within the edits allowed, else 0."""
    length = max(len(a), len(b))
    allowed = 0 if length < 5 else 1 if length < 8 else 2
    edits = OSA.distance(a, b, score_cutoff=allowed)
    return 1.0 - EDIT_COST * edits / length if edits <= allowed else 0.0


def _spelling_similarity(a: str, b: str) -> float:
    """0..1 similarity of two tokens by their letters alone: the ratio, lifted to
    ``1 - 0.6 * edits / length`` for the typos :func:`token_similarity` tolerates."""
    if a == b:
        return 1.0
    sim = fuzz.ratio(a, b) / 100.0
    length = max(len(a), len(b))
    if length >= 5:
        allowed = 1 if length < LONG_WORD else 2
        edits = OSA.distance(a, b, score_cutoff=allowed)
        if edits <= allowed:
            sim = max(sim, 1.0 - EDIT_COST * edits / length)
    return sim


def token_similarity(a: str, b: str) -> float:
    """0..1 similarity of two normalised tokens (typo, initial, phonetic and prefix aware).

    Typos are counted as edits (insertion, deletion, substitution, transposition): in
    a token of 5+ letters one edit, and in one of 8+ letters two, keep the tokens the
    same word at ``1 - 0.6 * edits / length``.
    """
    if a == b:
        return 1.0
    if len(a) == 1 or len(b) == 1:
        return INITIAL_SIM if a[0] == b[0] else 0.0
    sim = fuzz.ratio(a, b) / 100.0
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    best = sim
    same_word = False
    if len(long_) >= 4 and sim >= 0.6:
        allowed = 1 if len(long_) < LONG_WORD else 2
        edits = OSA.distance(a, b, score_cutoff=allowed)
        if edits <= allowed:
            same_word = True
            if len(long_) >= 5:
                best = max(best, 1.0 - EDIT_COST * edits / len(long_))
    skeleton = len(short) == 2 and not any(ch in "aeiouy" for ch in short)  # "sd" for saad
    if sim >= PHONETIC_MIN_RATIO and (len(short) >= 3 or skeleton) and _phon(a) == _phon(b):
        same_word = True
        best = max(best, PHONETIC_SIM)
    if len(short) >= 4 and long_.startswith(short):
        same_word = True
        best = max(best, PREFIX_SIM)
    # Spelling alone (more edits than a typo allows, no shared sound, not a prefix) does
    # not make two words the same: "Shipping" is not "Iranshipping", "Sana" not "Anas".
    return best if same_word else min(sim, TOKEN_MIN_SIM - 0.01)


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
        self._variant_tids: list[tuple[int, ...]] = []
        self._variant_weights: list[tuple[float, ...]] = []  # role x rarity per token
        self._variant_total: list[float] = []
        self._variant_compact: list[str] = []
        self._variant_initial: list[bool] = []
        self._vocab: dict[str, int] = {}
        self._vocab_tokens: list[str] = []
        self._key_index: dict[str, list[int]] = {}  # blocking key -> vocabulary ids
        self._keys: dict[str, tuple[int, ...]] = {}  # the same, frozen once built
        self._word_tids: set[int] = set()  # vocabulary ids that are words, not joined pairs
        self._token_cache: dict[str, TokenMatches] = {}
        self._name_cache: dict[tuple[str, bool], _Name] = {}
        self._rarity: list[float] = []
        self._build()
        self._build_fact_arrays()
        self._entry_index = {entry.entry_id: idx for idx, entry in enumerate(self._entries)}
        self._entry_hashes: dict[str, str] = {}
        self._variant_entry = [v.entry_idx for v in self._variants]
        self._variant_entry_array = np.asarray(self._variant_entry, dtype=np.int64)
        self._variant_weak = [v.weak for v in self._variants]
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

    @property
    def entries(self) -> Sequence[ListEntry]:
        """The loaded list entries (read-only)."""
        return tuple(self._entries)

    def entry_hash(self, entry_id: str) -> str | None:
        """The content hash of a loaded entry, as monitoring records it (None if not loaded).

        Onboarding keeps it with each hit, so that a re-screen knows a hit already reviewed
        then from a designation that has changed since.
        """
        found = self._entry_hashes.get(entry_id)
        if found is None:
            idx = self._entry_index.get(entry_id)
            if idx is None:
                return None
            found = self._entry_hashes[entry_id] = entry_content_hash(self._entries[idx])
        return found

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
        doc_freq: list[int] = []
        # (token id, variant, role weight) for every word, and for adjacent short words
        # written together ("hong ri" -> "hongri"), so either spelling finds the variant.
        cells: list[tuple[int, int, float]] = []
        for idx, entry in enumerate(self._entries):
            is_entity = entry.entity_type != "person"
            seen: set[tuple[str, ...]] = set()
            entry_tids: set[int] = set()
            names = [(entry.name, False, True)]
            names += [(a, False, False) for a in entry.aliases]
            names += [(a, True, False) for a in entry.weak_aliases]
            for display, weak, primary in names:
                norm = normalize_name(display, is_entity=is_entity)
                if not norm.tokens or norm.tokens in seen:
                    continue
                seen.add(norm.tokens)
                vidx = len(self._variants)
                tids = tuple(self._token_id(t, doc_freq) for t in norm.tokens)
                cells.extend(zip(tids, [vidx] * len(tids), norm.weights, strict=True))
                for i, joined in _joined_pairs(norm.tokens):
                    tid = self._token_id(joined, doc_freq, joined=True)
                    cells.append((tid, vidx, norm.weights[i] + norm.weights[i + 1]))
                    entry_tids.add(tid)
                entry_tids.update(tids)
                self._variants.append(_Variant(idx, display, norm, weak, primary))
                self._variant_tids.append(tids)
                self._variant_compact.append(norm.compact)
                self._variant_initial.append(any(len(t) == 1 for t in norm.tokens))
            for tid in entry_tids:
                doc_freq[tid] += 1
        # Rarity: a token found on every entry weighs RARITY_FLOOR, one found once weighs 1.
        n_entries = max(len(self._entries), 1)
        scale = math.log(n_entries) if n_entries > 1 else 1.0
        self._rarity = [
            RARITY_FLOOR + (1.0 - RARITY_FLOOR) * max(0.0, math.log(n_entries / df)) / scale
            for df in doc_freq
        ]
        for variant, tids in zip(self._variants, self._variant_tids, strict=True):
            weights = tuple(
                w * self._rarity[t] for t, w in zip(tids, variant.norm.weights, strict=True)
            )
            self._variant_weights.append(weights)
            self._variant_total.append(sum(weights))
        # Token postings (variant, role weight), sorted by token then variant, for the
        # candidate search; joined pairs count like words there but are not aligned as
        # words. A word twice in one name ("MUHAMMAD, Muhammad") is one posting, with the
        # heavier role: one query word can only be aligned with one of them.
        roles: dict[tuple[int, int], float] = {}
        for tid, vidx, role in cells:
            if role > roles.get((tid, vidx), -1.0):
                roles[(tid, vidx)] = role
        postings = sorted(roles.items())
        cell_tids = np.fromiter((k[0] for k, _ in postings), dtype=np.int64, count=len(postings))
        self._postings_ptr = np.concatenate(
            [[0], np.cumsum(np.bincount(cell_tids, minlength=len(self._vocab_tokens)))]
        ).astype(np.int64)
        self._postings = np.fromiter(
            (k[1] for k, _ in postings), dtype=np.int64, count=len(postings)
        )
        self._postings_role = np.fromiter(
            (r for _, r in postings), dtype=np.float64, count=len(postings)
        )
        self._variant_weight = np.asarray(self._variant_total, dtype=np.float64)
        self._rarity_array = np.asarray(self._rarity, dtype=np.float64)
        self._build_vocab_arrays()
        # Tuples of ints, unlike lists, drop out of the garbage collector's walks: a few
        # hundred thousand lists here made every full collection cost a tenth of a second.
        self._keys = {key: tuple(tids) for key, tids in self._key_index.items()}
        self._key_index.clear()

    def _build_fact_arrays(self) -> None:
        """The entries' type, dates of birth and countries as arrays, for corroboration in bulk."""
        facts = self._entries
        self._entry_person = np.fromiter(
            (e.entity_type == "person" for e in facts), dtype=bool, count=len(facts)
        )
        dobs = [e.dates_of_birth for e in facts]
        self._dob_ptr = np.concatenate([[0], np.cumsum([len(d) for d in dobs])]).astype(np.int64)
        flat = [d for entry_dobs in dobs for d in entry_dobs]
        self._dob_from = np.fromiter((d.year_from for d in flat), dtype=np.int64, count=len(flat))
        self._dob_to = np.fromiter((d.year_to for d in flat), dtype=np.int64, count=len(flat))
        self._dob_exact = np.fromiter(
            (d.exact.toordinal() if d.exact else -1 for d in flat), dtype=np.int64, count=len(flat)
        )
        self._country_ids: dict[str, int] = {}
        countries = [e.countries for e in facts]
        self._country_ptr = np.concatenate([[0], np.cumsum([len(c) for c in countries])]).astype(
            np.int64
        )
        self._country_code = np.fromiter(
            (
                self._country_ids.setdefault(c, len(self._country_ids))
                for entry_countries in countries
                for c in entry_countries
            ),
            dtype=np.int64,
            count=int(self._country_ptr[-1]),
        )

    def _corroboration(
        self, queries: list[_Query], rows: np.ndarray, entries: np.ndarray
    ) -> np.ndarray:
        """:func:`_corroboration_points` for many (query, entry) pairs at once, plus the
        legal-form bonus a query could get: what DOB, country, type and legal form can add."""
        n_q = len(queries)
        kinds = np.fromiter(
            (0 if q.kind is None else 1 if q.kind == "person" else 2 for q in queries),
            dtype=np.int64,
            count=n_q,
        )
        dob_days = np.fromiter(
            (q.subject.dob.toordinal() if q.subject.dob else -1 for q in queries),
            dtype=np.int64,
            count=n_q,
        )
        dob_years = np.fromiter(
            (q.subject.dob.year if q.subject.dob else 0 for q in queries), dtype=np.int64, count=n_q
        )
        countries = np.fromiter(
            (-1 if not q.country else self._country_ids.get(q.country, -2) for q in queries),
            dtype=np.int64,
            count=n_q,
        )
        legal = np.fromiter(
            (
                LEGAL_FORM_MATCH_BONUS if set(q.norm.legal_forms) - _WILDCARD_FORMS else 0.0
                for q in queries
            ),
            dtype=np.float64,
            count=n_q,
        )
        points = np.zeros(len(rows), dtype=np.float64)
        person = self._entry_person[entries]
        kind = kinds[rows]
        points[(kind == 1) & ~person] -= NON_PERSON_PENALTY
        points[(kind == 2) & person] -= NOT_A_PERSON_PENALTY
        # Date of birth: of a person, against every date the entry lists.
        dob_n = self._dob_ptr[entries + 1] - self._dob_ptr[entries]
        asked = (dob_days[rows] >= 0) & person
        points[asked & (dob_n == 0)] -= DOB_MISSING_PENALTY
        pairs = np.flatnonzero(asked & (dob_n > 0))
        if len(pairs):
            lengths = dob_n[pairs]
            at = _expand(self._dob_ptr[entries[pairs]], lengths)
            owner = np.repeat(np.arange(len(pairs)), lengths)
            firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            year = dob_years[rows[pairs]][owner]
            low, high = self._dob_from[at], self._dob_to[at]
            exact = np.maximum.reduceat(self._dob_exact[at] == dob_days[rows[pairs]][owner], firsts)
            within = np.maximum.reduceat((low <= year) & (year <= high), firsts)
            gap = np.minimum.reduceat(np.minimum(np.abs(year - low), np.abs(year - high)), firsts)
            points[pairs] += np.where(
                exact,
                DOB_EXACT_BONUS,
                np.where(
                    within,
                    DOB_YEAR_BONUS,
                    np.where(gap <= 1, -DOB_NEAR_PENALTY, -DOB_MISMATCH_PENALTY),
                ),
            )
        # Country: among the entry's countries, if it lists any.
        country_n = self._country_ptr[entries + 1] - self._country_ptr[entries]
        asked = countries[rows] != -1
        points[asked & (country_n == 0)] -= COUNTRY_MISSING_PENALTY
        pairs = np.flatnonzero(asked & (country_n > 0))
        if len(pairs):
            lengths = country_n[pairs]
            at = _expand(self._country_ptr[entries[pairs]], lengths)
            owner = np.repeat(np.arange(len(pairs)), lengths)
            firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            same = np.maximum.reduceat(
                self._country_code[at] == countries[rows[pairs]][owner], firsts
            )
            points[pairs] += np.where(same, COUNTRY_MATCH_BONUS, -COUNTRY_MISMATCH_PENALTY)
        return points + legal[rows]

    def _build_vocab_arrays(self) -> None:
        """Per vocabulary token, what comparing query tokens with it in bulk needs."""
        tokens = self._vocab_tokens
        n = len(tokens)
        self._vocab_len = np.fromiter(map(len, tokens), dtype=np.int64, count=n)
        self._vocab_first = np.fromiter((ord(t[0]) for t in tokens), dtype=np.int64, count=n)
        self._vocab_vowelless = np.fromiter(
            (not any(ch in "aeiouy" for ch in t) for t in tokens), dtype=bool, count=n
        )
        self._is_word = np.zeros(n, dtype=bool)
        self._is_word[list(self._word_tids)] = True
        self._phon_ids: dict[str, int] = {}
        self._vocab_phon = np.fromiter(
            (self._phon_ids.setdefault(_phon(t), len(self._phon_ids)) for t in tokens),
            dtype=np.int64,
            count=n,
        )
        self._skeleton_ids: dict[str, int] = {}
        skeletons = [arabic_skeleton(t) for t in tokens]
        self._vocab_skeleton = np.fromiter(
            (self._skeleton_ids.setdefault(k, len(self._skeleton_ids)) for k in skeletons),
            dtype=np.int64,
            count=n,
        )
        self._vocab_skeleton_len = np.fromiter(map(len, skeletons), dtype=np.int64, count=n)

    def _token_id(self, token: str, doc_freq: list[int], *, joined: bool = False) -> int:
        tid = self._vocab.get(token)
        if tid is not None and not joined and tid not in self._word_tids:
            self._word_tids.add(tid)
            for key in _index_keys(token):  # first seen joined: add its word keys now
                if tid not in self._key_index.setdefault(key, []):
                    self._key_index[key].append(tid)
        if tid is None:
            tid = len(self._vocab_tokens)
            self._vocab[token] = tid
            self._vocab_tokens.append(token)
            doc_freq.append(0)
            if not joined:
                self._word_tids.add(tid)
            keys = _typo_keys(token) if joined else _index_keys(token)
            for key in keys:
                found = self._key_index.get(key)
                if found is None:
                    self._key_index[key] = [tid]
                else:
                    found.append(tid)
        return tid

    def _token_matches(self, token: str, skeletons: tuple[str, ...] = ()) -> TokenMatches:
        """Vocabulary tokens similar to ``token`` (see :meth:`_match_tokens`), cached."""
        key = _cache_key(token, skeletons)
        cached = self._token_cache.get(key)
        if cached is None:
            cached = self._match_tokens({key: (token, skeletons)})[key]
        return cached

    def _match_tokens(
        self, wanted: dict[str, tuple[str, tuple[str, ...]]]
    ) -> dict[str, TokenMatches]:
        """Vocabulary tokens similar to each wanted query token, all compared at once.

        Candidates come from the key index (same word, one typo away, same consonant
        skeleton, same ends of a long word); every (query token, candidate) pair is then
        scored in bulk (rapidfuzz ``cpdist`` for the ratio, the typo distance and the
        common prefix, numpy for the rest), exactly as :func:`pair_similarity` scores one
        pair. ``skeletons``: the token was written in Arabic script; a listed word with
        one of these consonant skeletons is the same word spelled with its vowels.
        Results go into the per-token cache and are returned.
        """
        items = list(wanted.items())
        key_index = self._keys
        pair_q: list[int] = []
        pair_t: list[int] = []
        for i, (_, (token, skeletons)) in enumerate(items):
            if len(token) < 2:
                continue
            candidates: set[int] = set()
            keys = _query_keys(token)
            keys.update("%" + k for k in skeletons)
            for k in keys:
                listed = key_index.get(k)
                if listed:
                    candidates.update(listed)
            pair_q.extend([i] * len(candidates))
            pair_t.extend(sorted(candidates))
        q_idx = np.asarray(pair_q, dtype=np.int64)
        t_idx = np.asarray(pair_t, dtype=np.int64)
        sims = self._pair_similarities(items, q_idx, t_idx)
        keep = sims > 0.0
        q_idx, t_idx, sims = q_idx[keep], t_idx[keep], sims[keep]
        bounds = np.searchsorted(q_idx, np.arange(len(items) + 1))
        out: dict[str, TokenMatches] = {}
        if len(self._token_cache) + len(items) > TOKEN_CACHE_MAX:
            self._token_cache.clear()
        for i, (key, _) in enumerate(items):
            lo, hi = bounds[i], bounds[i + 1]
            tids, found = t_idx[lo:hi], sims[lo:hi]
            matches = TokenMatches(tids, found)
            out[key] = matches
            self._token_cache[key] = matches
        return out

    def _pair_similarities(
        self,
        items: list[tuple[str, tuple[str, tuple[str, ...]]]],
        q_idx: np.ndarray,
        t_idx: np.ndarray,
    ) -> np.ndarray:
        """:func:`pair_similarity` for many (query token, vocabulary token) pairs; 0 = no match."""
        if not len(q_idx):
            return np.zeros(0, dtype=np.float64)
        tokens = [token for _, (token, _) in items]
        skeleton_ids = self._skeleton_ids
        q_len = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
        q_first = np.fromiter((ord(t[0]) for t in tokens), dtype=np.int64, count=len(tokens))
        q_vowelless = np.fromiter(
            (not any(ch in "aeiouy" for ch in t) for t in tokens), dtype=bool, count=len(tokens)
        )
        q_phon = np.fromiter(
            (self._phon_ids.get(_phon(t), -1) for t in tokens), dtype=np.int64, count=len(tokens)
        )
        q_own = np.fromiter(
            (self._vocab.get(t, -1) for t in tokens), dtype=np.int64, count=len(tokens)
        )
        q_skel = np.full((len(tokens), 2), -1, dtype=np.int64)
        for i, (_, (_, skeletons)) in enumerate(items):
            for j, k in enumerate(skeletons[:2]):
                q_skel[i, j] = skeleton_ids.get(k, -1)
        left = [tokens[i] for i in q_idx.tolist()]
        vocab = self._vocab_tokens
        right = [vocab[t] for t in t_idx.tolist()]
        workers = -1 if len(left) >= BULK_THREADS_MIN else 1
        ratio = process.cpdist(left, right, scorer=fuzz.ratio, dtype=np.float64, workers=workers)
        ratio /= 100.0
        edits = process.cpdist(
            left, right, scorer=OSA.distance, score_cutoff=2, dtype=np.int64, workers=workers
        )
        prefix = process.cpdist(
            left, right, scorer=Prefix.similarity, dtype=np.int64, workers=workers
        )
        a_len, b_len = q_len[q_idx], self._vocab_len[t_idx]
        long_, short = np.maximum(a_len, b_len), np.minimum(a_len, b_len)
        # Words: token_similarity, term by term.
        best = ratio.copy()
        typo = (long_ >= 4) & (ratio >= 0.6) & (edits <= np.where(long_ < LONG_WORD, 1, 2))
        same = typo.copy()
        lifted = typo & (long_ >= 5)
        best[lifted] = np.maximum(best[lifted], 1.0 - EDIT_COST * edits[lifted] / long_[lifted])
        short_vowelless = np.where(a_len <= b_len, q_vowelless[q_idx], self._vocab_vowelless[t_idx])
        phonetic = (
            (ratio >= PHONETIC_MIN_RATIO)
            & ((short >= 3) | ((short == 2) & short_vowelless))
            & (q_phon[q_idx] == self._vocab_phon[t_idx])
        )
        best[phonetic] = np.maximum(best[phonetic], PHONETIC_SIM)
        same |= phonetic
        prefixed = (short >= 4) & (prefix == short)
        best[prefixed] = np.maximum(best[prefixed], PREFIX_SIM)
        same |= prefixed
        word = np.where(same, best, np.minimum(ratio, TOKEN_MIN_SIM - 0.01))
        initial = (a_len == 1) | (b_len == 1)
        word[initial] = np.where(q_first[q_idx] == self._vocab_first[t_idx], INITIAL_SIM, 0.0)[
            initial
        ]
        word[t_idx == q_own[q_idx]] = 1.0
        skel = self._vocab_skeleton[t_idx]
        skeletal = (
            ((skel == q_skel[q_idx, 0]) | (skel == q_skel[q_idx, 1]))
            & ((self._vocab_skeleton_len[t_idx] >= 2) | (long_ <= 2))
            & (word < SKELETON_SIM)
        )
        word[skeletal] = SKELETON_SIM
        word[word < TOKEN_MIN_SIM] = 0.0
        # Two list words written together: typos only (_edit_similarity).
        allowed = np.where(long_ < 5, 0, np.where(long_ < LONG_WORD, 1, 2))
        joined = np.where(edits <= allowed, 1.0 - EDIT_COST * edits / long_, 0.0)
        joined[joined < JOIN_MIN_SIM] = 0.0
        return np.where(self._is_word[t_idx], word, joined)

    # -------------------------------------------------------------- matching
    def _prepare_many(self, subjects: Sequence[ScreeningSubject]) -> list[_Query]:
        """Normalise the subjects and look up their tokens (new ones compared in bulk)."""
        names = self._name_cache
        # this batch's names, held here: another thread may clear the shared cache meanwhile
        batch: dict[tuple[str, bool], _Name] = {}
        missing: dict[tuple[str, bool], _Lookups] = {}
        wanted: dict[str, tuple[str, tuple[str, ...]]] = {}
        cache = self._token_cache
        for subject in subjects:
            kind = subject.entity_type
            key = (subject.name, kind is not None and kind != "person")
            if key in batch or key in missing:
                continue
            known = names.get(key)
            if known is not None:
                batch[key] = known
                continue
            norm = normalize_name(key[0], is_entity=key[1])
            tokens = norm.tokens
            skeletons = norm.skeletons or ((),) * len(tokens)
            token_keys: list[str] = []
            for token, skeleton in zip(tokens, skeletons, strict=True):
                token_key = _cache_key(token, skeleton)
                token_keys.append(token_key)
                if token_key not in cache:
                    wanted[token_key] = (token, skeleton)
            joined = _joined_pairs(tokens)
            for _, text in joined:
                if text not in cache:
                    wanted[text] = (text, ())
            missing[key] = (norm, token_keys, joined)
        if missing:
            fresh = self._match_tokens(wanted) if wanted else {}
            if len(names) + len(missing) > NAME_CACHE_MAX:
                names.clear()
            built = dict(zip(missing, self._names(list(missing.values()), fresh), strict=True))
            names.update(built)
            batch.update(built)
        queries: list[_Query] = []
        for subject in subjects:
            kind = subject.entity_type
            name = batch[(subject.name, kind is not None and kind != "person")]
            norm = name.norm
            if kind is None:
                if norm.org_evidence:
                    kind = "entity"
                elif subject.dob is not None:
                    kind = "person"
            country = subject.country.strip().upper() if subject.country else None
            queries.append(
                _Query(
                    subject,
                    name,
                    norm,
                    name.matches,
                    name.rarity,
                    name.total,
                    norm.compact,
                    name.initial,
                    kind,
                    country or None,
                )
            )
        return queries

    def _names(self, lookups: list[_Lookups], fresh: dict[str, TokenMatches]) -> list[_Name]:
        """Normalised names with their similar vocabulary tokens (from ``fresh`` or the cache).

        The candidate-search rows of all the names are built as one set of arrays and each
        name keeps its slice: per name, a few tiny numpy calls cost more than the work.
        """
        cache = self._token_cache

        def lookup(key: str, token: str, skeletons: tuple[str, ...] = ()) -> TokenMatches:
            found = fresh.get(key) or cache.get(key)
            return found if found is not None else self._token_matches(token, skeletons)

        vocab, rarities = self._vocab, self._rarity
        found_tids: list[np.ndarray] = []
        found_sims: list[np.ndarray] = []
        sizes: list[int] = []
        scalars: list[tuple[float, float, float]] = []  # role weight, rarity, word (1) or pair
        spans: list[tuple[int, int]] = []  # per name: its rows in the arrays
        heads: list[tuple[list[TokenMatches], list[float], float]] = []
        rows = 0
        for norm, token_keys, joined in lookups:
            tokens, weights = norm.tokens, norm.weights
            skeletons = norm.skeletons or ((),) * len(tokens)
            rarity: list[float] = []
            matches: list[TokenMatches] = []
            start = rows
            total = 0.0
            for ti, token in enumerate(tokens):
                tid = vocab.get(token)
                own = rarities[tid] if tid is not None else 1.0
                rarity.append(own)
                total += weights[ti] * own
                found = lookup(token_keys[ti], token, skeletons[ti])
                matches.append(found)
                size = len(found.tids)
                if size:
                    found_tids.append(found.tids)
                    found_sims.append(found.sims)
                    sizes.append(size)
                    scalars.append((weights[ti], own, 1.0))
                    rows += size
            for i, text in joined:
                found = lookup(text, text)
                size = len(found.tids)
                if size:
                    found_tids.append(found.tids)
                    found_sims.append(found.sims)
                    sizes.append(size)
                    scalars.append(
                        (weights[i] + weights[i + 1], min(rarity[i], rarity[i + 1]), 0.0)
                    )
                    rows += size
            spans.append((start, rows))
            heads.append((matches, rarity, total))
        if found_tids:
            tids = np.concatenate(found_tids)
            terms = np.empty((4, rows), dtype=np.float64)
            terms[0] = np.concatenate(found_sims)
            terms[1:] = np.repeat(np.asarray(scalars, dtype=np.float64).T, sizes, axis=1)
        else:
            tids = np.zeros(0, dtype=np.int64)
            terms = np.zeros((4, 0), dtype=np.float64)
        return [
            _Name(
                norm=norm,
                matches=matches,
                rarity=rarity,
                total=total,
                initial=any(len(t) == 1 for t in norm.tokens),
                tids=tids[lo:hi],
                terms=terms[:, lo:hi],
            )
            for (norm, _, _), (matches, rarity, total), (lo, hi) in zip(
                lookups, heads, spans, strict=True
            )
        ]

    def _shortlists(self, queries: list[_Query]) -> list[list[_Candidate]]:
        """Per query, the variants worth an exact alignment, best first: (variant, pre-score,
        what corroboration (DOB, country, type, legal form) will add to it or take).

        For every query of the batch at once (numpy over the token postings, no Python
        loop per variant): each query's rarity- and role-weighted overlap with every
        variant sharing a similar token, as the numerator and denominator of the weighted
        Dice the alignment computes. Exact when each word has one counterpart, an
        over-estimate otherwise (an under-estimate only for split words and initials).
        The (query, variant) sums are grouped by one sort of packed integer keys, each
        query's cells in the order it alone would give, so a query's pre-scores do not
        depend on the batch it is in.
        """
        n_q = len(queries)
        sizes = np.fromiter((len(q.name.tids) for q in queries), dtype=np.int64, count=n_q)
        if not sizes.any():
            return [[] for _ in queries]
        row = np.repeat(np.arange(n_q, dtype=np.int64), sizes)
        tids = np.concatenate([q.name.tids for q in queries])
        sims, weight, own, word = np.concatenate([q.name.terms for q in queries], axis=1)
        low = np.minimum(own, self._rarity_array[tids])
        # Per matched (query, vocabulary token): what it adds to the numerator and to the
        # denominator of every variant holding that token, split into a part paid once
        # per variant and a part proportional to the token's role weight in the variant.
        num_once, num_role = sims * weight * low, sims * low
        # Each matched word trades its own weight for the pair's lower rarity.
        den_once = word * weight * (low - own)
        den_role = word * (low - self._rarity_array[tids])
        starts = self._postings_ptr[tids]
        lengths = self._postings_ptr[tids + 1] - starts
        count = int(lengths.sum())
        if not count:
            return [[] for _ in queries]
        element = np.repeat(np.arange(len(tids), dtype=np.int64), lengths)
        at = _expand(starts, lengths)
        roles = self._postings_role[at]
        num_cell = num_once[element] + num_role[element] * roles
        den_cell = den_once[element] + den_role[element] * roles
        # Group the cells by (query, variant): one sort of packed keys (query, variant,
        # cell), so each group sums its cells in the order the query alone gives them.
        var_bits = max(1, len(self._variants).bit_length())
        shift = max(1, count.bit_length())
        group = (row[element] << var_bits) | self._postings[at]
        if n_q.bit_length() + var_bits + shift <= 62:
            packed = (group << shift) | np.arange(count)
            packed.sort()
            order = packed & ((1 << shift) - 1)
            group = packed >> shift
        else:  # keys too wide to pack (a huge list): a stable sort, same order
            order = np.argsort(group, kind="stable")
            group = group[order]
        firsts = np.flatnonzero(np.concatenate([[True], group[1:] != group[:-1]]))
        num = np.add.reduceat(num_cell[order], firsts)
        den = np.add.reduceat(den_cell[order], firsts)
        keys = group[firsts]
        row_of, indices = keys >> var_bits, keys & ((1 << var_bits) - 1)
        own_total = np.fromiter((q.total for q in queries), dtype=np.float64, count=n_q)
        total = own_total[row_of] + self._variant_weight[indices] + den
        prescore = 100.0 * num / np.maximum(total, 1e-9)
        keep = prescore >= PRESCORE_FLOOR
        kept_rows, kept_cols, kept_scores = row_of[keep], indices[keep], prescore[keep]
        # Best first within each query, ties by variant: (query, variant) order is kept by
        # a stable sort on the pre-score, then a stable (radix) sort on the query.
        ranked = np.argsort(-kept_scores, kind="stable")
        ranked = ranked[np.argsort(kept_rows[ranked].astype(np.int16), kind="stable")]
        kept_rows, kept_cols = kept_rows[ranked], kept_cols[ranked]
        kept_scores = kept_scores[ranked]
        bounds = np.searchsorted(kept_rows, np.arange(n_q + 1))
        top = np.arange(len(kept_rows)) - bounds[kept_rows] < SHORTLIST
        kept_rows, kept_cols, kept_scores = kept_rows[top], kept_cols[top], kept_scores[top]
        bonus = self._corroboration(queries, kept_rows, self._variant_entry_array[kept_cols])
        bounds = np.searchsorted(kept_rows, np.arange(n_q + 1)).tolist()
        found = list(
            zip(
                kept_cols.tolist(),
                kept_scores.tolist(),
                bonus.tolist(),
                strict=True,
            )
        )
        return [found[bounds[qi] : bounds[qi + 1]] for qi in range(n_q)]

    def _align(self, query: _Query, vidx: int) -> _Alignment:
        """Greedy best-first token alignment scored as a weighted Dice coefficient."""
        tids = self._variant_tids[vidx]
        pairs: list[tuple[float, int, int]] = []
        for qi, found in enumerate(query.matches):
            by_id = found.sims_by_id
            for ci, tid in enumerate(tids):
                sim = by_id.get(tid)
                if sim is not None:
                    pairs.append((sim, qi, ci))
        cand = self._variants[vidx].norm
        q_tokens, c_tokens = query.norm.tokens, cand.tokens
        if query.initial or self._variant_initial[vidx]:
            for qi, q_token in enumerate(q_tokens):
                for ci, c_token in enumerate(c_tokens):
                    if len(q_token) == 1 or len(c_token) == 1:
                        sim = token_similarity(q_token, c_token)
                        if sim >= TOKEN_MIN_SIM:
                            pairs.append((sim, qi, ci))
        if len(pairs) > 1:
            pairs.sort(reverse=True)
        q_weights, q_rarity = query.norm.weights, query.rarity
        c_weights, c_rw = cand.weights, self._variant_weights[vidx]
        rarity = self._rarity
        used_q: set[int] = set()
        used_c: set[int] = set()
        matched: list[tuple[int, int, float, float]] = []
        num = den = unmatched_q = 0.0
        unmatched_c = self._variant_total[vidx]
        for sim, qi, ci in pairs:
            if qi in used_q or ci in used_c:
                continue
            used_q.add(qi)
            used_c.add(ci)
            weight = (q_weights[qi] + c_weights[ci]) * min(q_rarity[qi], rarity[tids[ci]])
            num += sim * weight
            den += weight
            unmatched_c -= c_rw[ci]
            matched.append((qi, ci, sim, weight))
        if len(used_q) < len(q_tokens) and len(used_c) < len(c_tokens):
            before = len(matched)
            num, den = self._second_chance(query, vidx, used_q, used_c, matched, num, den)
            for _, ci, _, _ in matched[before:]:
                unmatched_c -= c_rw[ci]
        unmatched_q = query.total - sum(q_weights[qi] * q_rarity[qi] for qi in used_q)
        den += max(unmatched_q, 0.0) + max(unmatched_c, 0.0)
        raw = 100.0 * num / den if den else 0.0
        score = raw
        spelled = False
        if len(matched) == 1 and max(len(q_tokens), len(c_tokens)) > 1:
            score = min(score, SINGLE_TOKEN_CAP)
        elif len(matched) == 1 and not query.norm.skeletons and not cand.skeletons:
            # One word on each side is the whole name: a shared sound or prefix ("Thomas" /
            # "Tamas", "Wulff" / "Wolf") does not make it the same name; its spelling, with
            # the typos a word of its length allows, does. (A name written in Arabic script,
            # screened or listed, has only its consonants to go by, and keeps them.)
            by_spelling = 100.0 * _spelling_similarity(q_tokens[0], c_tokens[0])
            if by_spelling < score:
                score, spelled = by_spelling, True
        alignment = _Alignment(score, matched, den, raw, spelled=spelled)
        # Word-boundary differences ("Saadeddine" vs "Saad Eddine") defeat token
        # alignment; compare the space-free forms as a fallback.
        if len(q_tokens) != len(c_tokens) and len(query.compact) >= 8 and score < 90:
            ratio = fuzz.ratio(query.compact, self._variant_compact[vidx])
            if ratio >= COMPACT_MIN and ratio - 5.0 > score:
                alignment.score = ratio - 5.0
                alignment.compact = True
        return alignment

    def _second_chance(
        self,
        query: _Query,
        vidx: int,
        used_q: set[int],
        used_c: set[int],
        matched: list[tuple[int, int, float, float]],
        num: float,
        den: float,
    ) -> tuple[float, float]:
        """Words left over on both sides: two typos in one long word, or a word split in two.

        Two typos in one word of 8+ letters ("Zawahiri" / "Zwahiry") share no retrieval
        key, and a given name written together or apart ("Hongri" / "Hong Ri",
        "Saadeddine" / "Saad Eddine") leaves one word on one side and two on the other.
        """
        cand = self._variants[vidx].norm
        tids = self._variant_tids[vidx]
        q_tokens, c_tokens = query.norm.tokens, cand.tokens
        for qi, q_token in enumerate(q_tokens):
            if qi in used_q or len(q_token) < 5:
                continue
            for ci, c_token in enumerate(c_tokens):
                if ci in used_c or len(c_token) < 5 or max(len(q_token), len(c_token)) < 8:
                    continue
                if abs(len(q_token) - len(c_token)) > 2:  # more than two edits apart
                    continue
                sim = _edit_similarity(q_token, c_token)
                if sim >= TOKEN_MIN_SIM:
                    used_q.add(qi)
                    used_c.add(ci)
                    rarity = min(query.rarity[qi], self._rarity[tids[ci]])
                    weight = (query.norm.weights[qi] + cand.weights[ci]) * rarity
                    num += sim * weight
                    den += weight
                    matched.append((qi, ci, sim, weight))
                    break
        sides = (
            (q_tokens, used_q, c_tokens, used_c, False),
            (c_tokens, used_c, q_tokens, used_q, True),
        )
        for one, used_one, two, used_two, flipped in sides:
            for i, word in enumerate(one):
                if i in used_one or len(word) < 4:
                    continue
                best: tuple[float, int, int] | None = None
                for a in range(len(two)):
                    if a in used_two or two[a][0] != word[0]:
                        continue
                    # Written apart, the two halves stand next to each other, in either order.
                    for b in (a - 1, a + 1):
                        if b < 0 or b >= len(two) or b in used_two:
                            continue
                        if abs(len(two[a]) + len(two[b]) - len(word)) > 2:
                            continue
                        sim = _edit_similarity(word, two[a] + two[b])
                        if sim >= JOIN_MIN_SIM and (best is None or sim > best[0]):
                            best = (sim, a, b)
                if best is None:
                    continue
                sim, a, b = best
                used_one.add(i)
                used_two.update((a, b))
                for j in (a, b):
                    qi, ci = (j, i) if flipped else (i, j)
                    q_weight, c_weight = query.norm.weights[qi], cand.weights[ci]
                    if flipped:
                        c_weight /= 2  # the one word's weight is shared by its two halves
                    else:
                        q_weight /= 2
                    rarity = min(query.rarity[qi], self._rarity[tids[ci]])
                    weight = (q_weight + c_weight) * rarity
                    num += sim * weight
                    den += weight
                    matched.append((qi, ci, sim, weight))
        return num, den

    def _finish(self, query: _Query, shortlist: list[_Candidate]) -> ScreeningResult:
        """Align, corroborate and rank the shortlisted variants, best pre-score first.

        The pre-score equals the alignment's name score for most pairs, so the walk stops
        once no remaining entry could reach the report floor (or beat the fifth hit) even
        with every corroboration bonus, and skips an entry that could not with its own
        (a DOB or country that contradicts); only those still in the running are aligned.
        """
        variant_entry = self._variant_entry
        by_entry: dict[int, list[int]] = {}
        order: list[tuple[float, int, float]] = []
        for vidx, prescore, bonus in shortlist:
            entry_idx = variant_entry[vidx]
            found = by_entry.get(entry_idx)
            if found is None:
                by_entry[entry_idx] = [vidx]
                order.append((prescore, entry_idx, bonus))
            else:
                found.append(vidx)
        scored: list[tuple[float, float, int, int, _Alignment, list[ScoreComponent]]] = []
        finals: list[float] = []
        bar = HIT_FLOOR
        weak, initials = self._variant_weak, self._variant_initial
        for prescore, entry_idx, bonus in order:
            if prescore + MAX_BONUS + PRESCORE_SLACK < bar:
                break
            # What DOB, country and type will add (or take), from the shortlist: a person
            # born in another year than a listed namesake is not worth aligning. Only a
            # contradiction tightens the walk's bound, and not where initials make the
            # pre-score low.
            variants = by_entry[entry_idx]
            if (
                bonus < 0
                and prescore + MAX_BONUS + bonus + PRESCORE_SLACK < bar
                and not query.initial
                and not any(initials[v] for v in variants)
            ):
                continue
            aligned: tuple[float, int, _Alignment] | None = None
            for vidx in variants:
                alignment = self._align(query, vidx)
                name_score = alignment.score - (WEAK_ALIAS_PENALTY if weak[vidx] else 0.0)
                if aligned is None or name_score > aligned[0]:
                    aligned = (name_score, vidx, alignment)
            assert aligned is not None
            name_score, vidx, alignment = aligned
            if round(name_score + bonus, 1) < bar:  # scores are judged rounded
                continue
            entry = self._entries[entry_idx]
            adjustments = _corroborate(entry, self._variants[vidx].norm, query)
            total = name_score + sum(c.points for c in adjustments)
            score = round(max(0.0, min(100.0, total)), 1)
            if score < HIT_FLOOR:
                continue
            scored.append((score, total, entry_idx, vidx, alignment, adjustments))
            finals.append(score)
            if len(finals) >= MAX_HITS:
                finals.sort(reverse=True)
                bar = max(HIT_FLOOR, finals[MAX_HITS - 1])
        scored.sort(key=lambda item: (-item[0], self._entries[item[2]].entry_id))
        hits = [
            self._hit(query, self._entries[entry_idx], vidx, alignment, adjustments, total, score)
            for score, total, entry_idx, vidx, alignment, adjustments in scored[:MAX_HITS]
        ]
        best = hits[0] if hits else None
        top = best.score if best else 0.0
        decision: Literal["clear", "potential_match"] = (
            "potential_match" if top >= self.threshold else "clear"
        )
        return ScreeningResult(decision, top, best, hits, self.list_version, self.threshold)

    def _hit(
        self,
        query: _Query,
        entry: ListEntry,
        vidx: int,
        alignment: _Alignment,
        adjustments: list[ScoreComponent],
        total: float,
        score: float,
    ) -> ScreeningHit:
        variant = self._variants[vidx]
        breakdown = self._name_components(query, vidx, alignment) + adjustments
        if score != round(total, 1):
            breakdown.append(ScoreComponent("bounds", "score kept within 0..100", score - total))
        return ScreeningHit(
            list_name=entry.list_name,
            entry_id=entry.entry_id,
            matched_name=variant.display,
            score=score,
            explanation=_explain(query, entry, variant, alignment, adjustments),
            breakdown=tuple(breakdown),
            threshold=self.threshold,
        )

    def _name_components(
        self, query: _Query, vidx: int, alignment: _Alignment
    ) -> list[ScoreComponent]:
        """The name part of a hit's breakdown: points per aligned token, costs of the rest."""
        variant = self._variants[vidx]
        q_tokens, c_tokens = query.norm.tokens, variant.norm.tokens
        out: list[ScoreComponent] = []
        if alignment.compact:
            out.append(
                ScoreComponent(
                    "spacing",
                    f"'{query.norm.text}' ~ '{variant.norm.text}' compared without spaces",
                    alignment.score,
                )
            )
        else:
            den = alignment.denominator or 1.0
            for qi, ci, sim, weight in alignment.pairs:
                detail = q_tokens[qi] if sim == 1.0 else f"{q_tokens[qi]}~{c_tokens[ci]}"
                out.append(
                    ScoreComponent(
                        "token", detail, 100.0 * sim * weight / den, round(sim, 3), round(weight, 3)
                    )
                )
            used_q = {qi for qi, _, _, _ in alignment.pairs}
            used_c = {ci for _, ci, _, _ in alignment.pairs}
            for qi, token in enumerate(q_tokens):
                if qi not in used_q:
                    weight = query.norm.weights[qi] * query.rarity[qi]
                    out.append(
                        ScoreComponent("query_only_token", token, 0.0, 0.0, round(weight, 3))
                    )
            for ci, token in enumerate(c_tokens):
                if ci not in used_c:
                    weight = self._variant_weights[vidx][ci]
                    out.append(ScoreComponent("list_only_token", token, 0.0, 0.0, round(weight, 3)))
            if alignment.spelled:
                out.append(
                    ScoreComponent(
                        "one_word_spelling",
                        "a one-word name counts by its spelling, not its sound",
                        alignment.score - alignment.raw,
                    )
                )
            elif alignment.score < alignment.raw:
                out.append(
                    ScoreComponent(
                        "single_token_cap",
                        "only one word in common",
                        alignment.score - alignment.raw,
                    )
                )
        if variant.weak:
            out.append(
                ScoreComponent("weak_alias", "weak (low-quality) alias", -WEAK_ALIAS_PENALTY)
            )
        return out

    def clear_caches(self) -> None:
        """Forget cached token comparisons and normalised names (they only speed up names
        seen before): the next screening sees everything for the first time."""
        self._token_cache.clear()
        self._name_cache.clear()
        normalize_name.cache_clear()
        clear_transliteration_cache()

    def screen(self, subject: ScreeningSubject) -> ScreeningResult:
        """Screen one subject against every loaded list."""
        return self.screen_many([subject])[0]

    def screen_many(self, subjects: Iterable[ScreeningSubject]) -> list[ScreeningResult]:
        """Screen many subjects at once (one result per subject, in order).

        Same results as screening each alone, but the candidate search runs as one set
        of numpy operations per chunk of names instead of one per name.
        """
        results: list[ScreeningResult] = []
        pending = list(subjects)
        for start in range(0, len(pending), BATCH_CHUNK):
            chunk = self._prepare_many(pending[start : start + BATCH_CHUNK])
            shortlists = self._shortlists(chunk)
            for query, shortlist in zip(chunk, shortlists, strict=True):
                if not query.norm.tokens:
                    results.append(
                        ScreeningResult("clear", 0.0, None, [], self.list_version, self.threshold)
                    )
                else:
                    results.append(self._finish(query, shortlist))
        return results


def _joined_pairs(tokens: tuple[str, ...]) -> list[tuple[int, str]]:
    """Adjacent words that may also be written as one ("hong ri" / "hongri")."""
    return [
        (i, tokens[i] + tokens[i + 1])
        for i in range(len(tokens) - 1)
        if 2 <= min(len(tokens[i]), len(tokens[i + 1])) <= JOIN_PART_MAX
        and len(tokens[i]) + len(tokens[i + 1]) <= JOIN_MAX
    ]


def _typo_keys(token: str) -> list[str]:
    keys = ["=" + token]
    if len(token) >= 4:
        keys.append("-" + token)
        keys.extend("-" + d for d in _deletes(token))
    if len(token) >= LONG_WORD:
        keys.extend(_ends(token))
    return keys


def _ends(token: str) -> list[str]:
    """A long word's first and last five letters: two typos rarely hit both ends."""
    return ["^" + token[:5], "$" + token[-5:]]


def _index_keys(token: str) -> set[str]:
    keys = set(_typo_keys(token))
    if len(token) >= 3:
        keys.add("~" + _phon(token))
    if len(token) >= 2:
        keys.add("%" + arabic_skeleton(token))
    return keys


def _expand(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The positions ``start, start + 1, ..., start + length - 1`` of every run, in order."""
    count = int(lengths.sum())
    return np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(count)


def _cache_key(token: str, skeletons: tuple[str, ...]) -> str:
    return "|".join((token, *skeletons)) if skeletons else token


def pair_similarity(
    token: str, listed: str, skeletons: tuple[str, ...] = (), *, word: bool = True
) -> float:
    """How similar a query token is to a vocabulary token, 0 when they do not match.

    The one-pair reference for the bulk comparison the screener runs (it must give the
    same numbers). A listed ``word`` matches from :data:`TOKEN_MIN_SIM` by
    :func:`token_similarity`, or, for a token written in Arabic script (``skeletons``),
    at :data:`SKELETON_SIM` when the listed word has one of its consonant skeletons (a
    one-letter skeleton, "au" ~ "aw", only between two words of two letters). Two listed
    words written together (``word=False``) match the token on typos alone.
    """
    if len(token) < 2:
        return 0.0
    if not word:
        sim = _edit_similarity(token, listed)
        return sim if sim >= JOIN_MIN_SIM else 0.0
    sim = token_similarity(token, listed)
    if skeletons and sim < SKELETON_SIM:
        key = arabic_skeleton(listed)
        if key in skeletons and (len(key) >= 2 or max(len(token), len(listed)) <= 2):
            sim = SKELETON_SIM
    return sim if sim >= TOKEN_MIN_SIM else 0.0


def _query_keys(token: str) -> set[str]:
    keys = {"=" + token}
    if len(token) == 2 and not any(ch in "aeiouy" for ch in token):
        keys.add("~" + _phon(token))  # an unvocalised skeleton: "dn" for din / dan / den
    if len(token) >= 3:
        keys.add("~" + _phon(token))
        keys.add("-" + token)
    if len(token) >= 4:
        keys.update("-" + d for d in _deletes(token))
    if len(token) >= LONG_WORD - 2:
        keys.update(_ends(token))
    return keys


@dataclass(frozen=True, slots=True)
class _Facts:
    """A list entry's corroborating data, for :func:`_corroboration_points` (the one-pair
    reference of the bulk ``SanctionsScreener._corroboration``)."""

    person: bool
    exact_dobs: frozenset[dt.date]
    dob_years: tuple[tuple[int, int], ...]
    countries: frozenset[str]

    @classmethod
    def of(cls, entry: ListEntry) -> _Facts:
        return cls(
            entry.entity_type == "person",
            frozenset(d.exact for d in entry.dates_of_birth if d.exact is not None),
            tuple((d.year_from, d.year_to) for d in entry.dates_of_birth),
            frozenset(entry.countries),
        )


def _corroboration_points(facts: _Facts, query: _Query) -> float:
    """The points :func:`_corroborate` gives for entity type, DOB and country (no legal form)."""
    points = 0.0
    kind = query.kind
    if kind == "person":
        if not facts.person:
            points -= NON_PERSON_PENALTY
    elif kind is not None and facts.person:
        points -= NOT_A_PERSON_PENALTY
    dob = query.subject.dob
    if dob is not None and facts.person:
        if not facts.dob_years:
            points -= DOB_MISSING_PENALTY
        elif dob in facts.exact_dobs:
            points += DOB_EXACT_BONUS
        else:
            year, gap = dob.year, -1
            for low, high in facts.dob_years:
                if low <= year <= high:
                    gap = 0
                    break
                near = min(abs(year - low), abs(year - high))
                gap = near if gap < 0 else min(gap, near)
            if gap == 0:
                points += DOB_YEAR_BONUS
            elif gap <= 1:
                points -= DOB_NEAR_PENALTY
            else:
                points -= DOB_MISMATCH_PENALTY
    country = query.country
    if country:
        if not facts.countries:
            points -= COUNTRY_MISSING_PENALTY
        elif country in facts.countries:
            points += COUNTRY_MATCH_BONUS
        else:
            points -= COUNTRY_MISMATCH_PENALTY
    return points


def _corroborate(entry: ListEntry, listed: NormalizedName, query: _Query) -> list[ScoreComponent]:
    """Score adjustments from entity type, legal form, DOB and country."""
    out: list[ScoreComponent] = []
    kind = query.kind
    dob = query.subject.dob
    if kind == "person" and entry.entity_type != "person":
        detail = f"list entry is a {entry.entity_type}"
        if dob is not None and query.subject.entity_type is None:
            detail = f"subject has a DOB but list entry is a {entry.entity_type}"
        out.append(ScoreComponent("entity_type", detail, -NON_PERSON_PENALTY))
    elif kind is not None and kind != "person" and entry.entity_type == "person":
        out.append(
            ScoreComponent(
                "entity_type",
                "subject is an organisation, list entry a person",
                -NOT_A_PERSON_PENALTY,
            )
        )
    mine = set(query.norm.legal_forms) - _WILDCARD_FORMS
    theirs = set(listed.legal_forms) - _WILDCARD_FORMS
    if mine and theirs:
        if mine & theirs:
            out.append(
                ScoreComponent(
                    "legal_form",
                    f"legal form {'/'.join(sorted(mine & theirs))} matches",
                    LEGAL_FORM_MATCH_BONUS,
                )
            )
        else:
            out.append(
                ScoreComponent(
                    "legal_form",
                    f"legal form {'/'.join(sorted(mine))} differs from listed "
                    f"{'/'.join(sorted(theirs))}",
                    -LEGAL_FORM_MISMATCH_PENALTY,
                )
            )
    if dob is not None and entry.entity_type == "person":
        if not entry.dates_of_birth:
            out.append(ScoreComponent("dob", "no DOB on list entry", -DOB_MISSING_PENALTY))
        elif any(d.exact == dob for d in entry.dates_of_birth):
            out.append(ScoreComponent("dob", f"DOB {dob.isoformat()} matches", DOB_EXACT_BONUS))
        elif any(d.year_from <= dob.year <= d.year_to for d in entry.dates_of_birth):
            out.append(ScoreComponent("dob", f"DOB year {dob.year} matches", DOB_YEAR_BONUS))
        else:
            gap = min(
                min(abs(dob.year - d.year_from), abs(dob.year - d.year_to))
                for d in entry.dates_of_birth
            )
            listed_dobs = ", ".join(d.describe() for d in entry.dates_of_birth[:3])
            if gap <= 1:
                out.append(
                    ScoreComponent(
                        "dob",
                        f"DOB year {dob.year} close to listed {listed_dobs}",
                        -DOB_NEAR_PENALTY,
                    )
                )
            else:
                out.append(
                    ScoreComponent(
                        "dob",
                        f"DOB year {dob.year} differs from listed {listed_dobs}",
                        -DOB_MISMATCH_PENALTY,
                    )
                )
    country = query.country
    if country:
        if not entry.countries:
            out.append(
                ScoreComponent("country", "no country on list entry", -COUNTRY_MISSING_PENALTY)
            )
        elif country in entry.countries:
            out.append(ScoreComponent("country", f"country {country} matches", COUNTRY_MATCH_BONUS))
        else:
            out.append(
                ScoreComponent(
                    "country",
                    f"country {country} not in listed {', '.join(entry.countries)}",
                    -COUNTRY_MISMATCH_PENALTY,
                )
            )
    return out


def _explain(
    query: _Query,
    entry: ListEntry,
    variant: _Variant,
    alignment: _Alignment,
    adjustments: list[ScoreComponent],
) -> str:
    kind = "name" if variant.primary else ("weak alias" if variant.weak else "alias")
    text = f"name '{query.subject.name}' ~ {kind} '{variant.display}'"
    if not variant.primary:
        text += f" of '{entry.name}'"
    q_tokens, c_tokens = query.norm.tokens, variant.norm.tokens
    if alignment.compact:
        detail = "spacing-insensitive"
    else:
        detail = f"{len(alignment.pairs)} tokens aligned"
        fuzzy = [f"{q_tokens[qi]}~{c_tokens[ci]}" for qi, ci, sim, _ in alignment.pairs if sim < 1]
        if fuzzy:
            detail += f", fuzzy {' '.join(fuzzy)}"
        used_q = {qi for qi, _, _, _ in alignment.pairs}
        used_c = {ci for _, ci, _, _ in alignment.pairs}
        list_only = [t for ci, t in enumerate(c_tokens) if ci not in used_c]
        query_only = [t for qi, t in enumerate(q_tokens) if qi not in used_q]
        if list_only:
            detail += f", list-only {' '.join(list_only)}"
        if query_only:
            detail += f", query-only {' '.join(query_only)}"
    name_score = alignment.score - (WEAK_ALIAS_PENALTY if variant.weak else 0.0)
    text += f" (name score {name_score:.0f}: {detail})"
    if adjustments:
        text += "; " + "; ".join(c.detail for c in adjustments)
    return text

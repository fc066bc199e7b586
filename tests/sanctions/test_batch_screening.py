"""The batch path against the bundled list and the labelled set: ``screen_many`` gives what
screening one name at a time gives, cold or warm; the bulk token comparison is the one-pair
reference; the labelled set meets the acceptance (every variant class at recall 0.95 or more,
1% false positives or fewer); names written in Arabic script are compared on consonants."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from bench.screening_data import LIST_DIR
from integrations.sanctions import (
    DEFAULT_THRESHOLD,
    DateOfBirth,
    ListEntry,
    SanctionsScreener,
    ScreeningSubject,
    normalize_name,
)
from integrations.sanctions.catalog import entry_content_hash
from integrations.sanctions.matcher import (
    _cache_key,
    _corroborate,
    _corroboration_points,
    _Facts,
    _query_keys,
    pair_similarity,
)
from integrations.sanctions.normalize import arabic_skeleton
from tests.sanctions.labelled import ROWS
from tests.sanctions.labelled import subject_of as _subject


@pytest.fixture(scope="module")
def bundled() -> SanctionsScreener:
    """The bundled OFAC SDN list (2021-04), as the labelled set was generated from it."""
    return SanctionsScreener.from_files(sdn=LIST_DIR / "sdn.csv", alt=LIST_DIR / "alt.csv")


def _sample() -> list[dict[str, object]]:
    """A few hundred rows: every Arabic-script variant, and every seventh row of the rest
    (all variant classes, clean names in every script)."""
    arabic = [r for r in ROWS if r["kind"] == "arabic_script"]
    rest = [r for r in ROWS if r["kind"] != "arabic_script"][::7]
    return arabic + rest


def test_batch_equals_one_at_a_time_on_the_labelled_variants(bundled):
    rows = _sample()
    assert len(rows) >= 300
    assert {r["kind"] for r in rows} >= {"two_typos", "greek", "han", "entity_legal_form_typo"}
    subjects = [_subject(r) for r in rows] + [ScreeningSubject(str(r["name"])) for r in rows]
    bundled.clear_caches()
    cold = bundled.screen_many(subjects)  # every token and name seen for the first time
    single = [bundled.screen(s) for s in subjects]
    warm = bundled.screen_many(subjects)
    assert cold == single == warm  # hits, scores, breakdowns, explanations
    assert sum(len(r.hits) for r in single) > len(rows)  # there is something to compare
    # a batch split differently gives the same results
    assert bundled.screen_many(subjects[::-1]) == single[::-1]


def test_bulk_token_comparison_is_the_one_pair_reference(bundled):
    wanted: dict[str, tuple[str, tuple[str, ...]]] = {}
    for row in _sample():
        norm = normalize_name(str(row["name"]), is_entity=row.get("type") == "entity")
        for token, skeletons in zip(
            norm.tokens, norm.skeletons or ((),) * len(norm.tokens), strict=True
        ):
            wanted[_cache_key(token, skeletons)] = (token, skeletons)
    found = bundled._match_tokens(wanted)
    compared = 0
    for key, (token, skeletons) in wanted.items():
        candidates: set[int] = set()
        for index_key in _query_keys(token) | {"%" + k for k in skeletons}:
            candidates.update(bundled._keys.get(index_key, ()))
        reference = {}
        for tid in candidates:
            listed = bundled._vocab_tokens[tid]
            sim = pair_similarity(token, listed, skeletons, word=tid in bundled._word_tids)
            if sim:
                reference[tid] = sim
        assert found[key].sims_by_id == reference, token
        compared += len(candidates)
    assert compared > 5000


def test_labelled_set_meets_the_acceptance(bundled):
    results = bundled.screen_many([_subject(r) for r in ROWS])
    found: dict[str, list[bool]] = {}
    flagged = []
    for row, result in zip(ROWS, results, strict=True):
        if row["label"] == "match":
            hit = any(
                h.entry_id == row["expected_entry"] and h.score >= DEFAULT_THRESHOLD
                for h in result.hits
            )
            found.setdefault(str(row["kind"]), []).append(hit)
        else:
            flagged.append(result.decision == "potential_match")
    recall = {kind: sum(hits) / len(hits) for kind, hits in found.items()}
    assert min(recall.values()) >= 0.95, recall
    assert recall["arabic_script"] >= 0.95
    assert sum(flagged) / len(flagged) <= 0.01


@pytest.mark.parametrize(
    ("arabic", "latin"),
    [
        ("محمد", "Muhammad"),
        ("امد", "Omid"),
        ("ابدشحي", "Abedshahi"),  # ش + ح: the letters, not "sh" + "h" read as one
        ("زحر", "Zaher"),  # ز + ح: not the Cyrillic-style "zh"
        ("جبرن", "Jabarin"),
        ("جرين", "Grein"),  # ج / g
        ("بسم", "Bassam"),  # shadda: a doubled letter is written once
        ("وردح", "Wardah"),
        ("فاطمة", "Fatima"),  # ta marbuta
        ("عبدالح", "Abdullah"),
    ],
)
def test_an_arabic_script_token_has_the_consonants_of_its_latin_spelling(arabic, latin):
    [skeletons] = normalize_name(arabic).skeletons
    [token] = normalize_name(latin).tokens
    assert arabic_skeleton(token) in skeletons


def test_arabic_script_names_carry_skeletons_titles_and_the_article():
    norm = normalize_name("حجي اغا جن الزي")  # Haji Agha Jan Alizai
    assert norm.tokens == ("agha", "jn", "zi")  # the title is not a name word
    assert norm.skeletons[2] == ("z", "alz")  # ال attached may be part of the name
    assert arabic_skeleton("alizai") in norm.skeletons[2]
    assert normalize_name("Muhammad Gill").skeletons == ()  # Latin names: no skeletons
    assert normalize_name("الحاج محمد حسين").tokens == ("mhmd", "hsin")


def _person(num: int, name: str, dob: dt.date | None = None) -> ListEntry:
    dobs = (DateOfBirth(dob.year, dob.year, dob),) if dob else ()
    return ListEntry(f"ofac-sdn:{num}", "ofac-sdn", name, "person", dates_of_birth=dobs)


def test_arabic_script_names_find_their_latin_entries():
    screener = SanctionsScreener(
        [
            _person(1, "JABARIN, Zaher", dt.date(1968, 9, 11)),
            _person(2, "KHANANI, Obaid Altaf"),
            _person(3, "GILL, Muhammad Hussein"),
            _person(4, "JABER, Zuhair"),  # same consonants as Jabarin's first name, not his
            *(_person(10 + i, f"MOHAMMED, {n}") for i, n in enumerate(["Ali", "Omar", "Said"])),
        ],
        list_version="test",
    )
    for name, entry_id in [
        ("زحر جبرن", "ofac-sdn:1"),
        ("ابيد التف خنني", "ofac-sdn:2"),
        ("محمد حسين جل", "ofac-sdn:3"),
    ]:
        result = screener.screen(ScreeningSubject(name))
        assert result.decision == "potential_match" and result.best.entry_id == entry_id
    other = screener.screen(ScreeningSubject("زحر جبرن", dt.date(1990, 1, 1)))
    assert other.decision == "clear"  # the consonants alone do not make a match


def test_corroboration_in_bulk_is_what_corroboration_gives(bundled):
    queries = bundled._prepare_many([_subject(r) for r in ROWS[::5]])
    entries = list(range(0, bundled.entry_count, 97))
    rows = np.repeat(np.arange(len(queries)), len(entries))
    columns = np.tile(np.asarray(entries), len(queries))
    bulk = bundled._corroboration(queries, rows, columns).tolist()
    for points, qi, idx in zip(bulk, rows.tolist(), columns.tolist(), strict=True):
        query, entry = queries[qi], bundled._entries[idx]
        parts = _corroborate(entry, normalize_name(entry.name), query)
        expected = sum(c.points for c in parts if c.feature != "legal_form")
        assert _corroboration_points(_Facts.of(entry), query) == expected
        legal = 2.0 if set(query.norm.legal_forms) - {"co", "corp"} else 0.0
        assert points == expected + legal
    assert len(bulk) > 10_000


def test_entry_hash_is_the_monitoring_content_hash(bundled):
    entry = bundled.entries[123]
    assert bundled.entry_hash(entry.entry_id) == entry_content_hash(entry)
    assert bundled.entry_hash("ofac-sdn:does-not-exist") is None


class _ClearedAtOnce(dict):
    """A name cache that another thread empties the moment a batch has filled it."""

    def update(self, *args, **kwargs):
        super().update(*args, **kwargs)
        self.clear()


def test_a_batch_survives_its_names_leaving_the_shared_cache(bundled):
    subjects = [_subject(r) for r in _sample()[:120]]
    expected = [bundled.screen(s) for s in subjects]
    bundled.clear_caches()
    saved = bundled._name_cache
    bundled._name_cache = _ClearedAtOnce()
    try:
        assert bundled.screen_many(subjects) == expected
    finally:
        bundled._name_cache = saved

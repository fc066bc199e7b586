"""The simulated history: deterministic, in the case type's order, consistent with its SLAs."""

from __future__ import annotations

import io
import itertools
import statistics
from collections import defaultdict

from schemas.history import StageInterval, read_csv, write_csv

ORDER = [
    "acknowledgement",
    "document_collection",
    "compliance_review",
    "security_review",
    "account_setup",
    "final_review",
    "welcome",
]


def by_case(intervals: list[StageInterval]) -> dict[str, list[StageInterval]]:
    cases: dict[str, list[StageInterval]] = defaultdict(list)
    for iv in intervals:
        cases[iv.case_ref].append(iv)
    return cases


def test_the_same_seed_gives_the_same_history_and_another_seed_another(generate):
    assert generate(120, 5) == generate(120, 5)
    assert generate(120, 5) != generate(120, 6)


def test_stages_in_order_routing_send_backs_and_breaches(history, gen_history):
    limits = gen_history.budgets()
    assert limits["document_collection"] == 24 * 3600 and limits["final_review"] == 2 * 3600
    for visits in by_case(history).values():
        first = visits[0]
        stages = [v.stage for v in visits]
        assert stages[0] == "acknowledgement"
        if first.client_type != "enterprise":
            assert "security_review" not in stages
        elif "account_setup" in stages:
            assert "security_review" in stages
        for a, b in itertools.pairwise(visits):
            assert a.exited_at == b.entered_at  # one stage after the other, no gaps
            if a.outcome == "sent_back":
                assert b.stage == "document_collection"
            else:
                assert ORDER.index(b.stage) > ORDER.index(a.stage)
        for v in visits:
            assert v.breached == (v.seconds > limits.get(v.stage, float("inf")))


def test_realistic_shape(history):
    cases = by_case(history)
    firsts = [v[0] for v in cases.values()]
    international = sum(f.country != "GB" for f in firsts) / len(firsts)
    assert 0.18 < international < 0.32
    assert {f.client_type for f in firsts} == {"individual", "business", "enterprise"}
    done = [v for v in cases.values() if v[-1].stage == "welcome"]
    hours = [(v[-1].exited_at - v[0].created_at).total_seconds() / 3600 for v in done]
    assert 30 < statistics.median(hours) < 80  # the reference: about 2.3 days
    assert any(v.outcome == "sent_back" for v in history)
    assert any(v.outcome == "cancelled" for v in history)
    with_docs = [
        h for v, h in zip(done, hours, strict=True) if v[0].documents_submitted_at_creation
    ]
    without = [
        h for v, h in zip(done, hours, strict=True) if not v[0].documents_submitted_at_creation
    ]
    assert statistics.median(with_docs) < statistics.median(without)


def test_written_csv_reads_back_clean(history):
    buffer = io.StringIO()
    write_csv(buffer, history[:500])
    buffer.seek(0)
    intervals, problems = read_csv(buffer)
    assert problems == [] and intervals == history[:500]

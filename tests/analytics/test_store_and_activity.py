"""Models in learned_models, and the ETA activities against a real Postgres."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select
from temporalio.testing import ActivityEnvironment

from activities.eta import EtaActivities
from analytics.eta import EtaModel
from cli import eta as eta_cli
from schemas.eta import EstimateEtaInput, EtaFacts, RefitEtaInput, StageBudget
from store import history as history_store
from store import learned_models
from store.models import LearnedModel

ROUTE = [
    StageBudget(stage="acknowledgement"),
    StageBudget(stage="document_collection", sla_hours=24),
    StageBudget(stage="compliance_review", sla_hours=8),
    StageBudget(stage="account_setup", sla_hours=4),
    StageBudget(stage="final_review", sla_hours=2),
    StageBudget(stage="welcome"),
]


def estimate_input(ref: str = "ETA-1") -> EstimateEtaInput:
    return EstimateEtaInput(
        case_ref=ref,
        case_type="client_onboarding",
        facts=EtaFacts(
            client_type="business",
            tier="premium",
            country="DE",
            service_requirements=["mifid_ii"],
            created_at=datetime(2026, 3, 6, 16, 30, tzinfo=UTC),
        ),
        route=ROUTE,
    )


@pytest.fixture(autouse=True, scope="module")
async def _leave_no_models(sessions):
    """The test database is shared: models this module stores are removed at its end, so
    later tests of other modules estimate from budgets as they expect."""
    async with sessions() as session:
        before = {row[0] for row in (await session.execute(select(LearnedModel.id))).all()}
    yield
    async with sessions.begin() as session:
        await session.execute(delete(LearnedModel).where(LearnedModel.id.not_in(before or {0})))


async def test_saved_model_reloads_with_identical_predictions(sessions, eta_model, history):
    async with sessions.begin() as session:
        assert await learned_models.save(session, eta_model) is True
    async with sessions.begin() as session:
        assert await learned_models.save(session, eta_model.to_record()) is False  # idempotent
    async with sessions() as session:
        stored = await learned_models.get(session, "eta", eta_model.version)
        listed = await learned_models.versions(session, "eta")
    assert stored is not None and stored.cases == eta_model.cases
    assert stored.summary["holdout"]["holdout_cases"] > 0
    assert eta_model.version in [v for v, _, _ in listed]
    again = EtaModel.from_blob(stored.blob)
    cases = [v.facts for v in history if v.stage == "acknowledgement"][:200]
    assert again.predict(cases) == eta_model.predict(cases)


async def test_estimate_activity_caches_and_picks_up_a_newer_version(sessions, eta_model):
    now = [0.0]
    acts = EtaActivities(sessions, clock=lambda: now[0])
    env = ActivityEnvironment()
    async with sessions() as session:
        newest = await learned_models.latest(session, "eta")
    first = await env.run(acts.estimate_eta, estimate_input())
    if newest is None:
        assert first.basis == "budgets" and first.model_version is None
        assert first.p50 == datetime(2026, 3, 8, 4, 30, tzinfo=UTC)  # + 38 h of budgets
    # a newer fit is stored: seen only once the check interval has passed
    newer = EtaModel.from_blob(eta_model.to_blob())
    newer.version = "29991231T000000Z-newer0000000"
    newer.fitted_at = datetime(2999, 12, 31, tzinfo=UTC)
    async with sessions.begin() as session:
        await learned_models.save(session, newer)
    try:
        second = await env.run(acts.estimate_eta, estimate_input())
        assert second.model_version == first.model_version
        now[0] += 301
        third = await env.run(acts.estimate_eta, estimate_input())
    finally:  # leave the newest model to the other tests
        async with sessions.begin() as session:
            await session.execute(delete(LearnedModel).where(LearnedModel.version == newer.version))
    assert third.basis == "model" and third.model_version == newer.version
    assert third.p10 <= third.p50 <= third.p90
    [expected] = eta_model.predict([acts_facts()])
    assert third.p50 == expected.times(datetime(2026, 3, 6, 16, 30, tzinfo=UTC))[1]


def acts_facts():
    from activities.eta import case_facts

    return case_facts(estimate_input())


async def test_cli_predict_reads_the_newest_stored_model(database_url, tmp_path, capsys, history):
    facts = tmp_path / "facts.csv"
    facts.write_text(
        "case_ref,case_type,client_type,tier,country,service_requirements,"
        "documents_submitted_at_creation,created_at\n"
        "X-1,client_onboarding,individual,standard,GB,,true,2026-03-02T10:00:00+00:00\n"
    )
    import asyncio

    code = await asyncio.to_thread(
        eta_cli.main, ["eta", "predict", str(facts)], database_url=database_url
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert out.out.splitlines()[1].startswith("X-1,2026-03-")


async def test_refit_saves_a_new_version_only_when_history_changed(sessions, history):
    mine = [v for v in history if v.case_ref.startswith("SIM3-0001")]  # 100 cases
    async with sessions.begin() as session:
        await history_store.insert_intervals(session, mine)
    acts = EtaActivities(sessions)
    env = ActivityEnvironment()
    request = RefitEtaInput(case_type="client_onboarding", holdout=0)
    first = await env.run(acts.refit_eta, request)
    second = await env.run(acts.refit_eta, request)
    if first.saved:
        assert first.version and first.cases > 0
    assert second.saved is False and second.reason == "history unchanged"

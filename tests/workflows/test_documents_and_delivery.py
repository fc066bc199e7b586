"""Issues #4 and #5 at the workflow level, on the time-skipping server with real Postgres:
documents are verified and asked for again, provisioning survives a worker stopping
mid-step, premium clients get callbacks, and the real SendGrid client sends each milestone
once."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from temporalio import activity

from activities.accounts import AccountActivities
from api.services.documents import get_blob_store
from integrations.blobstore import case_document_key
from schemas.commands import DocumentsReceived, FinalSignOff
from schemas.enums import CaseStatus, Stage
from schemas.projection import AccountRef, ProvisionAccountInput
from store.models import Account, CallbackTaskRow, CaseTaskRow, DocumentRow, NotificationRow
from tests.conftest import running_worker, test_settings
from tests.documents import real_documents
from tests.factories import (
    audit_kinds,
    close_case,
    start_case,
    wait_for_event,
    wait_for_state,
    waived_documents,
)
from tests.standins.sendgrid_standin import running_sendgrid_standin
from tests.waiting import eventually, until_idle
from workers.main import build_activities, sandbox_runner
from workflows.onboarding import OnboardingCaseWorkflow as Wf

HOURS = timedelta(hours=1)


async def add_document(sessions, ref: str, kind: str, **dates: date) -> str:
    """What the upload API stores (the bytes live in the blob store; the workflow never sees
    them), followed by the signal it sends. The bytes are a readable document for the case's
    client (Ada Lovelace) showing ``dates``: verification reads them, not the typed dates.
    They go where the worker's verify activity looks (its settings' blob store)."""
    doc_id = f"doc_{uuid.uuid4().hex[:26]}"
    if kind == "government_id":
        data = real_documents.passport_pdf(expires=dates.get("expires_on"))
    else:
        data = real_documents.bill_pdf(issued=dates.get("issued_on"), seed=len(ref))
    digest = hashlib.sha256(data).hexdigest()
    key = case_document_key(ref, digest)
    get_blob_store(test_settings()).put(key, data)
    async with sessions.begin() as s:
        s.add(
            DocumentRow(
                id=doc_id,
                case_ref=ref,
                kind=kind,
                filename=f"{kind}.pdf",
                content_type="application/pdf",
                size=len(data),
                sha256=digest,
                storage_key=key,
                uploaded_by="client",
                uploaded_at=func.now(),
                **dates,
            )
        )
    return doc_id


async def outbox(sessions, ref: str) -> list[NotificationRow]:
    async with sessions() as s:
        rows = await s.scalars(
            select(NotificationRow)
            .where(NotificationRow.case_ref == ref)
            .order_by(NotificationRow.id)
        )
        return list(rows)


async def test_missing_document_client_reminded_then_upload_moves_the_case_on(
    time_skipping_env, sessions
):
    env = time_skipping_env
    today = (await time_skipping_env.get_current_time()).date()  # the workflows' today
    async with running_worker(env.client, sessions) as worker:
        ref, handle = await start_case(env, worker)
        await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
        doc = await add_document(
            sessions,
            ref,
            "government_id",
            issued_on=today - timedelta(days=300),
            expires_on=today + timedelta(days=2000),
        )
        await handle.signal(
            Wf.documents_received, DocumentsReceived(actor="client", document_ids=[doc])
        )
        await until_idle(handle)  # the signal is handled, whatever it led to has run
        state = await handle.query(Wf.state)
        assert (state.stage, state.status) == (
            Stage.DOCUMENT_COLLECTION,
            CaseStatus.WAITING_ON_CLIENT,
        )
        assert "documents_needed" not in await audit_kinds(sessions, ref)  # ack listed it

        await env.sleep(timedelta(hours=14, minutes=25))  # 60% of 24h: at risk -> reminder
        await wait_for_event(sessions, ref, "documents_needed")
        rows = [r for r in await outbox(sessions, ref) if r.milestone == "documents_needed"]
        assert {r.channel for r in rows} == {"email", "in_app"}
        assert "Proof of address" in rows[0].body_text
        assert "Government-issued photo ID" not in rows[0].body_text.split("Case reference")[0]

        bill = await add_document(
            sessions, ref, "proof_of_address", issued_on=today - timedelta(days=5)
        )
        await handle.signal(
            Wf.documents_received, DocumentsReceived(actor="client", document_ids=[bill])
        )
        await wait_for_state(handle, lambda s: s.stage == Stage.FINAL_REVIEW)
        async with sessions() as s:
            statuses = {
                d.kind: d.status
                for d in (
                    await s.scalars(select(DocumentRow).where(DocumentRow.case_ref == ref))
                ).all()
            }
        assert statuses == {"government_id": "accepted", "proof_of_address": "accepted"}
        await handle.execute_update(Wf.sign_off, FinalSignOff(reviewer="fred"))
        assert (await handle.result()).status == CaseStatus.COMPLETED


async def test_expired_id_is_asked_for_again_at_once(time_skipping_env, sessions):
    env = time_skipping_env
    today = (await time_skipping_env.get_current_time()).date()  # the workflows' today
    async with running_worker(env.client, sessions) as worker:
        ref, handle = await start_case(env, worker)
        await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
        doc = await add_document(
            sessions, ref, "government_id", expires_on=today - timedelta(days=3)
        )
        await handle.signal(
            Wf.documents_received, DocumentsReceived(actor="client", document_ids=[doc])
        )
        await wait_for_event(sessions, ref, "documents_needed")
        async with sessions() as s:
            row = await s.get(DocumentRow, doc)
        assert row is not None and row.status == "rejected"
        await handle.signal(Wf.documents_received, waived_documents())
        await wait_for_state(handle, lambda s: s.stage != Stage.DOCUMENT_COLLECTION)
        assert "documents_waived" in await audit_kinds(sessions, ref)
        await close_case(handle)


@activity.defn(name="provision_account")
async def provision_then_hang(inp: ProvisionAccountInput) -> AccountRef:
    """The real provisioning, then the worker 'dies' before reporting success."""
    await HANGING.provision_account(inp)
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


HANGING: Any = None


async def test_worker_stopped_mid_provisioning_still_gives_exactly_one_account(
    dev_server_env, sessions
):
    global HANGING
    env, settings = dev_server_env, test_settings()
    HANGING = AccountActivities(sessions)
    queue = f"tq-{uuid.uuid4().hex[:8]}"

    def activities(*, hanging: bool) -> list[Any]:
        acts = build_activities(settings, sessions)
        if not hanging:
            return acts
        keep = [
            a
            for a in acts
            if getattr(a, "__temporal_activity_definition").name != "provision_account"
        ]
        return [*keep, provision_then_hang]

    from temporalio.worker import Worker

    def worker(*, hanging: bool) -> Worker:
        return Worker(
            env.client,
            task_queue=queue,
            workflows=[Wf],
            activities=activities(hanging=hanging),
            workflow_runner=sandbox_runner(),
        )

    class Q:
        task_queue = queue

    async with worker(hanging=True):
        ref, handle = await start_case(env, Q)
        await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
        await handle.signal(Wf.documents_received, waived_documents())

        async def account() -> Account | None:
            async with sessions() as s:
                return await s.scalar(select(Account).where(Account.case_ref == ref))

        # the account row is committed, the activity never reports
        await eventually(account, what="worker A to reach the middle of provisioning")
        assert (await handle.query(Wf.state)).account_number is None  # not reported yet
    # worker A is gone mid-step; worker B picks the retried activity up
    async with worker(hanging=False):
        state = await wait_for_state(handle, lambda s: s.stage == Stage.FINAL_REVIEW, timeout=60)
        async with sessions() as s:
            accounts = (await s.scalars(select(Account).where(Account.case_ref == ref))).all()
        assert len(accounts) == 1
        assert state.account_number == accounts[0].account_number
        await close_case(handle)


async def test_premium_client_gets_a_callback_task_at_the_chosen_stage(time_skipping_env, sessions):
    env = time_skipping_env
    prefs = {"channels": ["email", "in_app"], "callback_stages": ["account_setup"]}
    async with running_worker(env.client, sessions) as worker:
        premium, h1 = await start_case(env, worker, tier="premium", contact_preferences=prefs)
        standard, h2 = await start_case(env, worker, contact_preferences=prefs)
        for handle in (h1, h2):
            await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
            await handle.signal(Wf.documents_received, waived_documents())
        # the premium plan adds "assign account manager" (relationship manager) to account setup
        await wait_for_state(
            h1, lambda s: s.stage == Stage.ACCOUNT_SETUP and bool(s.account_number)
        )
        await wait_for_state(h2, lambda s: s.stage == Stage.FINAL_REVIEW)
        # a callback is scheduled on the case's background lane, just after the stage began:
        # once both cases have nothing in flight, every callback asked for has been written
        for handle in (h1, h2):
            await until_idle(handle)
        async with sessions() as s:
            callbacks = list(
                await s.scalars(
                    select(CallbackTaskRow).where(CallbackTaskRow.case_ref.in_([premium, standard]))
                )
            )
            tasks = (
                await s.scalars(select(CaseTaskRow).where(CaseTaskRow.case_ref == premium))
            ).all()
        assert [(c.case_ref, c.stage, c.assignee_role, c.status) for c in callbacks] == [
            (premium, "account_setup", "relationship_manager", "open")
        ]
        assert {t.key: (t.done, t.assignee_role) for t in tasks} == {
            "sanctions_screening": (True, None),
            "risk_assessment": (True, None),
            "provision_account": (True, None),
            "assign_account_manager": (False, "relationship_manager"),
        }
        for handle in (h1, h2):
            await close_case(handle)


async def test_real_sendgrid_client_sends_each_milestone_exactly_once(time_skipping_env, sessions):
    env = time_skipping_env
    with running_sendgrid_standin(api_key="SG.e2e") as sendgrid:
        sendgrid.fail_next(1, status=500)  # the first send is retried, not duplicated
        settings = test_settings(sendgrid_api_key="SG.e2e", sendgrid_host=sendgrid.base_url)
        async with running_worker(env.client, sessions, settings) as worker:
            ref, handle = await start_case(env, worker)
            await wait_for_state(handle, lambda s: s.stage == Stage.DOCUMENT_COLLECTION)
            await handle.signal(Wf.documents_received, waived_documents())
            await wait_for_state(handle, lambda s: s.stage == Stage.FINAL_REVIEW)
            await handle.execute_update(Wf.sign_off, FinalSignOff(reviewer="fred"))
            await handle.result()
        subjects = [m.body["subject"] for m in sendgrid.accepted]
        assert len(subjects) == 6 and all(ref in s for s in subjects)
        assert [m.body["custom_args"]["case_ref"] for m in sendgrid.accepted] == [ref] * 6
        sent = [r for r in await outbox(sessions, ref) if r.channel == "email"]
        assert [r.milestone for r in sent] == [
            "case_created",
            "documents_received",
            "compliance_approved",
            "account_provisioning_started",
            "setup_completed",
            "welcome_package",
        ]
        assert all(r.status == "sent" and r.provider_message_id for r in sent)
        assert sent[0].attempts == 2

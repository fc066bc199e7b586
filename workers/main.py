"""The worker process: builds activity instances with their clients, registers the workflow."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.accounts import AccountActivities
from activities.automations import AutomationActivities
from activities.breach import BreachActivities
from activities.case_store import CaseStoreActivities
from activities.compliance import ComplianceActivities
from activities.dashboard_rollup import DashboardRollupActivities
from activities.documents import DocumentActivities
from activities.engine_store import EngineStoreActivities
from activities.eta import EtaActivities
from activities.monitoring import MonitoringActivities
from activities.notifications import NotificationActivities, build_senders
from activities.planning import PlanningActivities
from activities.rebalancing import RebalanceActivities
from activities.webhooks import WebhookActivities
from core.portal_links import make_portal_link
from core.settings import Settings
from integrations.sanctions import ReloadingScreener
from integrations.webhooks import WebhookSender
from store.db import SessionFactory, make_engine, make_session_factory
from workers.interceptors import ActivityLogContext
from workers.schedules import (
    ensure_dashboard_rollup_schedule,
    ensure_eta_refit_schedule,
    ensure_rebalance_schedule,
    ensure_sanctions_watch_schedule,
)
from workers.search_attributes import ensure_search_attributes
from workflows.dashboard_rollup import DashboardRollupWorkflow
from workflows.delivery_fallback import DeliveryFallbackWorkflow
from workflows.engine.case_workflow import CaseWorkflow
from workflows.onboarding import OnboardingCaseWorkflow
from workflows.rebalance import RebalanceWorkflow
from workflows.refit_eta import RefitEtaWorkflow
from workflows.rescreen import RescreenClientsWorkflow, SanctionsListWatchWorkflow

log = logging.getLogger(__name__)

# CaseWorkflow runs every case type; OnboardingCaseWorkflow is frozen, kept for the cases
# opened before the engine (replay tests cover both). RebalanceWorkflow is one workload
# rebalancing run (workers/schedules.py starts one every 15 minutes). DeliveryFallback sends
# a message a provider gave up on (bounce, undelivered) on the recipient's next channel.
# RefitEta learns the ETA model again from history (weekly, workers/schedules.py).
# DashboardRollup refreshes the dashboard's daily roll-up (hourly, workers/schedules.py).
# RescreenClients screens every client again when the sanctions lists change, and
# SanctionsListWatch looks for a new list (docs/sanctions-monitoring.md).
WORKFLOWS: Sequence[type] = (
    CaseWorkflow,
    OnboardingCaseWorkflow,
    RebalanceWorkflow,
    DeliveryFallbackWorkflow,
    RefitEtaWorkflow,
    DashboardRollupWorkflow,
    RescreenClientsWorkflow,
    SanctionsListWatchWorkflow,
)


def build_screener(settings: Settings) -> ReloadingScreener:
    """Loaded lazily on first use and reloaded when a list file changes."""
    return ReloadingScreener(
        sdn=settings.sanctions_sdn_path,
        alt=settings.sanctions_alt_path,
        opensanctions=settings.sanctions_opensanctions_path,
        threshold=settings.sanctions_threshold,
    )


def build_activities(
    settings: Settings, sessions: SessionFactory, temporal: Client | None = None
) -> list[Any]:
    """Every activity function the workflow may call, bound to its injected clients.

    This is the one place the outside world is plugged in: tests swap adapters here (stand-in
    hosts via settings), never in the workflow. ``temporal`` is for activities that start or
    command workflows themselves (sanctions monitoring opens alert cases and pauses cases).
    """
    store = CaseStoreActivities(sessions)
    accounts = AccountActivities(sessions)
    planning = PlanningActivities(settings.playbook_path)
    documents = DocumentActivities(sessions, settings)
    compliance = ComplianceActivities(
        sessions,
        build_screener(settings),
        high_risk_countries=settings.high_risk_countries,
        increased_monitoring_countries=settings.increased_monitoring_countries,
    )
    sender = (
        WebhookSender(settings.webhook_url, settings.webhook_secret.get_secret_value())
        if settings.webhook_url
        else None
    )
    webhooks = WebhookActivities(sessions, sender, max_attempts=settings.webhook_max_attempts)
    email, sms = build_senders(settings)
    notifications = NotificationActivities(
        sessions,
        email=email,
        sms=sms,
        staff_directory=settings.staff_directory | settings.person_directory(),
        portal_link=make_portal_link(settings),
        reply_domain=settings.inbound_reply_domain,
    )
    engine_store = EngineStoreActivities(sessions, notifications, webhooks)
    rebalancing = RebalanceActivities(sessions, settings)
    eta = EtaActivities(sessions)  # the case passes its route: budgets need no case types
    breach = BreachActivities(sessions)
    dashboard_rollup = DashboardRollupActivities(sessions)
    monitoring = MonitoringActivities(sessions, settings, temporal)
    automations = AutomationActivities(compliance, accounts, sessions, monitoring)
    return [
        store.project,
        accounts.provision_account,
        accounts.close_account,
        planning.plan_case,
        documents.verify_documents,
        compliance.screen_client,
        webhooks.deliver,
        notifications.notify,
        notifications.schedule_callback,
        notifications.deliver_fallback,
        engine_store.project,
        engine_store.sync,
        automations.run,
        rebalancing.rebalance,
        eta.estimate_eta,
        eta.refit_eta,
        breach.predict_breach,
        dashboard_rollup.refresh_rollup,
        monitoring.rescreen_batch,
        monitoring.finish_rescreen,
        monitoring.check_sanctions_source,
    ]


# Pydantic imports these lazily while validating payloads; loading them once, outside the
# sandbox, keeps every workflow run from re-importing them. The engine's own modules and the
# schemas are pure, deterministic code with no module state (tests/test_workflow_imports.py
# and the replay tests guard them): re-running their module bodies for every case in the
# sandbox cost a third of the worker's CPU per case.
PASSTHROUGH_MODULES = (
    "pydantic",
    "pydantic_core",
    "email_validator",
    "idna",
    "dns",
    "yaml",
    "schemas",
    "workflows.engine",
)


def sandbox_runner() -> SandboxedWorkflowRunner:
    """The workflow sandbox with our pass-through modules; replay tests use the same one."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def build_worker(
    client: Client, settings: Settings, sessions: SessionFactory, *, task_queue: str | None = None
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=list(WORKFLOWS),
        activities=build_activities(settings, sessions, client),
        workflow_runner=sandbox_runner(),
        # the client's interceptors (tracing, when on: core/tracing.py) run before these
        interceptors=[ActivityLogContext()],
        **worker_tuning(settings),
    )


def worker_tuning(settings: Settings) -> dict[str, Any]:
    """The WORKER_* settings as ``Worker`` arguments (bench/scale_bench.py chose the defaults:
    docs/BENCHMARKS.md, "Scale")."""
    return {
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "max_concurrent_workflow_tasks": settings.worker_max_concurrent_workflow_tasks,
        "max_concurrent_activities": settings.worker_max_concurrent_activities,
        "max_concurrent_local_activities": settings.worker_max_concurrent_local_activities,
        "max_concurrent_workflow_task_polls": settings.worker_max_concurrent_workflow_task_polls,
        "max_concurrent_activity_task_polls": settings.worker_max_concurrent_activity_task_polls,
        "sticky_queue_schedule_to_start_timeout": timedelta(
            seconds=settings.worker_sticky_queue_schedule_to_start_seconds
        ),
    }


async def run_worker(settings: Settings, database_url: str) -> None:
    """Run until SIGINT/SIGTERM, then finish in-flight tasks and exit."""
    from core.logging import redact_settings
    from core.telemetry import install_default_runtime
    from core.temporal import connect
    from core.tracing import setup_tracing
    from workers.payloads import WorkerPayloadConverter

    redact_settings(settings)
    setup_tracing("onboarding-worker")
    # Core logs as JSON; the SDK's and our metrics on WORKER_METRICS_ADDRESS (if set)
    install_default_runtime(settings.worker_metrics_address or None)
    client = await connect(settings, payload_converter_class=WorkerPayloadConverter)
    await ensure_search_attributes(client, client.namespace)
    await ensure_rebalance_schedule(client, settings)
    await ensure_eta_refit_schedule(client, settings)
    await ensure_dashboard_rollup_schedule(client, settings)
    await ensure_sanctions_watch_schedule(client, settings)
    engine = make_engine(
        database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pre_ping=settings.db_pool_pre_ping,
    )
    worker = build_worker(client, settings, make_session_factory(engine))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker started task_queue=%s namespace=%s metrics=%s",
        settings.temporal_task_queue,
        client.namespace,
        settings.worker_metrics_address or "off",
    )
    async with worker:
        await stop.wait()
        log.info("worker stopping")
    await engine.dispose()

"""The engine's automation registry: one handler per name in ``schemas.contracts.AUTOMATIONS``.

A case type names an automation (``action``); the engine runs it through one activity,
``RUN_AUTOMATION``, and gets small outputs back (references, not documents). Every handler is
idempotent on the case and the input's ``attempt_key``, so a retry never does the work twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.accounts import AccountActivities
from activities.compliance import ComplianceActivities
from activities.monitoring import MonitoringActivities
from schemas.compliance import RiskLevel, ScreenClientInput
from schemas.contracts import AUTOMATIONS, RUN_AUTOMATION, AutomationInput, AutomationResult
from schemas.projection import CloseAccountInput, ProvisionAccountInput
from store.db import SessionFactory

ATTEMPT_KEY_MAX = 80  # screenings.attempt_key
STOCK_LIMIT = 1000  # more than this many of an item is never in stock

Handler = Callable[[AutomationInput], Awaitable[AutomationResult]]


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidAutomationInput", non_retryable=True)


def screening_attempt_key(attempt_key: str) -> str:
    """The key fits the screenings column; a longer one is shortened stably (a hash)."""
    if len(attempt_key) <= ATTEMPT_KEY_MAX:
        return attempt_key
    return "h:" + hashlib.sha256(attempt_key.encode()).hexdigest()


class AutomationActivities:
    """``engine_run_automation``: dispatch on the action name to the existing activities."""

    def __init__(
        self,
        compliance: ComplianceActivities,
        accounts: AccountActivities,
        sessions: SessionFactory,
        monitoring: MonitoringActivities | None = None,
    ) -> None:
        self._compliance = compliance
        self._accounts = accounts
        self._sessions = sessions  # for handlers that keep their own records
        self._monitoring = monitoring  # sanctions alerts (activities/monitoring.py)
        self._handlers: dict[str, Handler] = {
            "screening": self._screening,
            "provision_account": self._provision_account,
            "close_account": self._close_account,
            "check_stock": self._check_stock,
            "issue_refund": self._issue_refund,
            "create_exchange": self._create_exchange,
            "record": self._record,
            "record_alert_outcome": self._record_alert_outcome,
            "escalate_client_case": self._escalate_client_case,
        }
        missing = set(AUTOMATIONS) - set(self._handlers)
        if missing:  # pragma: no cover - guarded by a test
            raise RuntimeError(f"no handler for automations: {sorted(missing)}")

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(self._handlers)

    @activity.defn(name=RUN_AUTOMATION)
    async def run(self, inp: AutomationInput) -> AutomationResult:
        """Run the named automation; an unknown name fails for good (``UnknownAutomation``)."""
        handler = self._handlers.get(inp.action)
        if handler is None:
            raise ApplicationError(
                f"unknown automation {inp.action!r}; known: {', '.join(sorted(self._handlers))}",
                type="UnknownAutomation",
                non_retryable=True,
            )
        result = await handler(inp)
        activity.logger.info(
            "automation case=%s element=%s action=%s: %s",
            inp.case_ref,
            inp.element_key,
            inp.action,
            result.summary,
        )
        return result

    # ------------------------------------------------------------------ handlers
    async def _screening(self, inp: AutomationInput) -> AutomationResult:
        if inp.client is None:
            raise _invalid("screening needs the client profile")
        outcome = await self._compliance.screen_client(
            ScreenClientInput(
                case_ref=inp.case_ref,
                client=inp.client,
                attempt_key=screening_attempt_key(inp.attempt_key),
            )
        )
        flags: list[str] = []
        if outcome.risk_level == RiskLevel.HIGH:
            flags += ["high_risk", "enhanced_due_diligence"]
        if outcome.decision == "potential_match":
            flags.append("potential_sanctions_match")
        return AutomationResult(
            outputs={
                "decision": outcome.decision,
                "risk_level": outcome.risk_level.value,
                "score": outcome.score,
                "risk_score": outcome.risk_score,
                "matched_name": outcome.matched_name,
                "list_entry_id": outcome.list_entry_id,
                "list_version": outcome.list_version,
                "risk_factors": list(outcome.risk_factors),
                "screening_id": outcome.screening_id,
            },
            summary=(
                f"screening {outcome.decision}, risk {outcome.risk_level.value} "
                f"({outcome.risk_score})"
            ),
            flags=flags,
        )

    async def _provision_account(self, inp: AutomationInput) -> AutomationResult:
        account = await self._accounts.provision_account(
            ProvisionAccountInput(case_ref=inp.case_ref, at=inp.at)
        )
        return AutomationResult(
            outputs={"account_number": account.account_number, "status": account.status},
            summary=f"account {account.account_number} {account.status}",
        )

    async def _close_account(self, inp: AutomationInput) -> AutomationResult:
        reason = str(inp.args.get("reason", "case cancelled"))
        account = await self._accounts.close_account(
            CloseAccountInput(case_ref=inp.case_ref, at=inp.at, reason=reason)
        )
        if account is None:
            return AutomationResult(
                outputs={"account_number": None, "status": "not_provisioned"},
                summary="no account to close",
            )
        return AutomationResult(
            outputs={"account_number": account.account_number, "status": account.status},
            summary=f"account {account.account_number} {account.status}",
        )

    async def _check_stock(self, inp: AutomationInput) -> AutomationResult:
        raw = inp.args.get("quantity")
        raw = 1 if raw is None else raw  # an order without an item count is one item
        try:
            quantity = int(raw)
        except (TypeError, ValueError):
            raise _invalid(f"check_stock: quantity must be a whole number, not {raw!r}") from None
        available = quantity <= STOCK_LIMIT
        return AutomationResult(
            outputs={"available": available},
            summary=f"{quantity} in stock" if available else f"{quantity} not in stock",
        )

    async def _issue_refund(self, inp: AutomationInput) -> AutomationResult:
        refund_id = f"RF-{inp.case_ref}-{inp.element_key}"  # deterministic: retries are no-ops
        amount = inp.args.get("amount")
        return AutomationResult(
            outputs={"refund_id": refund_id, "amount": amount},
            summary=f"refund {refund_id} issued",
        )

    async def _create_exchange(self, inp: AutomationInput) -> AutomationResult:
        ref = f"EX-{inp.case_ref}"
        return AutomationResult(
            outputs={"exchange_order_ref": ref}, summary=f"exchange order {ref} created"
        )

    def _monitor(self, action: str) -> MonitoringActivities:
        if self._monitoring is None:
            raise ApplicationError(
                f"{action}: this worker has no sanctions monitoring (build_activities adds it)",
                type="NotConfigured",
                non_retryable=True,
            )
        return self._monitoring

    async def _record_alert_outcome(self, inp: AutomationInput) -> AutomationResult:
        return await self._monitor(inp.action).record_alert_outcome(inp)

    async def _escalate_client_case(self, inp: AutomationInput) -> AutomationResult:
        return await self._monitor(inp.action).escalate_client_case(inp)

    async def _record(self, inp: AutomationInput) -> AutomationResult:
        outputs: dict[str, Any] = dict(inp.args)
        return AutomationResult(outputs=outputs, summary=f"recorded {len(outputs)} value(s)")

"""Account setup: provision exactly one account per case."""

from __future__ import annotations

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from temporalio import activity

from schemas.projection import AccountRef, CloseAccountInput, ProvisionAccountInput
from store.db import SessionFactory
from store.models import Account

ACCOUNT_PREFIX = "ACC"


def luhn_check_digit(digits: str) -> str:
    """Mod-10 check digit, so a mistyped account number is caught before it is used."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return str((10 - total % 10) % 10)


def format_account_number(sequence_value: int) -> str:
    body = f"{sequence_value:010d}"
    return f"{ACCOUNT_PREFIX}{body}{luhn_check_digit(body)}"


class AccountActivities:
    def __init__(self, session_factory: SessionFactory) -> None:
        self._sessions = session_factory

    @activity.defn(name="provision_account")
    async def provision_account(self, inp: ProvisionAccountInput) -> AccountRef:
        """Create the case's account, or return the one an earlier attempt created.

        Keyed on case_ref (unique), numbered from a Postgres sequence: retries, replays and a
        worker killed mid-step never yield a second account or a colliding number.
        """
        async with self._sessions.begin() as session:
            seq = (await session.execute(text("SELECT nextval('account_number_seq')"))).scalar_one()
            inserted = (
                await session.execute(
                    insert(Account)
                    .values(
                        case_ref=inp.case_ref,
                        account_number=format_account_number(int(seq)),
                        status="open",
                        opened_at=inp.at,
                    )
                    .on_conflict_do_nothing(index_elements=["case_ref"])
                    .returning(Account.account_number, Account.status)
                )
            ).first()
            if inserted is not None:
                activity.logger.info("account provisioned case=%s", inp.case_ref)
                return AccountRef(
                    case_ref=inp.case_ref,
                    account_number=inserted.account_number,
                    status=inserted.status,
                    created=True,
                )
            existing = (
                await session.execute(select(Account).where(Account.case_ref == inp.case_ref))
            ).scalar_one()
            return AccountRef(
                case_ref=inp.case_ref,
                account_number=existing.account_number,
                status=existing.status,
                created=False,
            )

    @activity.defn(name="close_account")
    async def close_account(self, inp: CloseAccountInput) -> AccountRef | None:
        """Compensation: close the case's account when the case is rejected or cancelled after
        provisioning. Closing a closed account changes nothing; no account, nothing to do."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(Account)
                .where(Account.case_ref == inp.case_ref, Account.status == "open")
                .values(status="closed", closed_at=inp.at, close_reason=inp.reason)
            )
            account = await session.scalar(select(Account).where(Account.case_ref == inp.case_ref))
            if account is None:
                return None
            activity.logger.info("account closed case=%s", inp.case_ref)
            return AccountRef(
                case_ref=inp.case_ref,
                account_number=account.account_number,
                status=account.status,
                created=False,
            )

"""Writing a new case row: shared by the API (draft before start) and the workflow's projection
(when a case was started outside the API)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert

from schemas.case import workflow_id_for
from schemas.client import ClientProfile
from schemas.enums import CaseStatus, Stage
from store.models import Case


def insert_draft_case(
    *,
    ref: str,
    client: ClientProfile,
    requested_by: str,
    request_hash: str = "",
    idempotency_key: str | None = None,
) -> Any:
    """INSERT of a draft case that does nothing when the ref (or key) already exists."""
    return (
        insert(Case)
        .values(
            ref=ref,
            workflow_id=workflow_id_for(ref),
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            requested_by=requested_by,
            status=CaseStatus.DRAFT.value,
            stage=Stage.ACKNOWLEDGEMENT.value,
            priority="normal",
            ever_paused=False,
            flags=[],
            client_name=client.name,
            client_email=str(client.email),
            client_phone=client.phone,
            client_type=client.client_type.value,
            client_tier=client.tier.value,
            country=client.country,
            profile=client.model_dump(mode="json"),
            projection_version=0,
        )
        .on_conflict_do_nothing()
    )

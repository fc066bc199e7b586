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
    case_type: str = "client_onboarding",
    case_type_version: str | None = None,
    engine: str = "onboarding-v1",
    data: dict[str, Any] | None = None,
    workflow_id: str | None = None,
    first_stage: str = Stage.ACKNOWLEDGEMENT.value,
    access_roles: list[str] | None = None,
) -> Any:
    """INSERT of a draft case that does nothing when the ref (or key) already exists.

    The defaults describe a case of the frozen onboarding workflow; the case engine passes its
    case type, ``engine="case"``, its own workflow id and the case type's first stage.
    """
    return (
        insert(Case)
        .values(
            ref=ref,
            workflow_id=workflow_id if workflow_id is not None else workflow_id_for(ref),
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            requested_by=requested_by,
            status=CaseStatus.DRAFT.value,
            stage=first_stage,
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
            case_type=case_type,
            case_type_version=case_type_version,
            engine=engine,
            access_roles=list(access_roles or []),
            data=dict(data or {}),
        )
        .on_conflict_do_nothing()
    )

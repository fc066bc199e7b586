"""/case-types: the case types this deployment can open (see playbooks/case_types)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status

from api.deps import AnyRole, CaseTypesDep
from api.responses import errors
from playbooks.registry import UnknownCaseType
from schemas.case import KEY_PATTERN
from schemas.casetype import CaseTypeSummary

router = APIRouter(prefix="/case-types", tags=["case types"])


@router.get("", response_model=list[CaseTypeSummary], responses=errors(401))
async def list_case_types(registry: CaseTypesDep, _: AnyRole) -> list[CaseTypeSummary]:
    """Every case type: name, version, title, stages and the fields its `data` takes."""
    return registry.summaries()


@router.get("/{name}", responses=errors(401, 404, 422, described={404: "No such case type"}))
async def get_case_type(
    name: Annotated[str, Path(pattern=KEY_PATTERN)], registry: CaseTypesDep, _: AnyRole
) -> dict[str, Any]:
    """The whole case type as loaded and validated: stages, elements, SLAs, rules."""
    try:
        case_type = registry.get(name)
    except UnknownCaseType as e:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=str(e)) from e
    return case_type.model_dump(mode="json", by_alias=True, exclude_none=True)

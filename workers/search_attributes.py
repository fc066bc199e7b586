"""Make sure the custom search attributes exist before any case starts."""

from __future__ import annotations

import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError

from workflows.search_attributes import ALL

log = logging.getLogger(__name__)


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Add the missing ones; return their names. Safe to call from every worker at start-up.

    On Temporal Cloud the operator API may be closed to API keys: then we log what to create
    by hand (``tcld namespace search-attributes add``) and carry on.
    """
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
    except RPCError as e:
        log.warning("search_attributes cannot list namespace=%s error=%s", namespace, e.message)
        return []
    missing = [k.name for k in ALL if k.name not in existing.custom_attributes]
    if not missing:
        return []
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={
                    name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for name in missing
                },
            )
        )
    except RPCError as e:
        if "already" in e.message.lower():
            return []
        log.warning(
            "search_attributes cannot add missing=%s namespace=%s error=%s; create them as "
            "Keyword in your cluster",
            missing,
            namespace,
            e.message,
        )
        return []
    log.info("search_attributes added=%s namespace=%s", missing, namespace)
    return missing

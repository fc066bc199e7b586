"""One way to connect to Temporal, used by the API, the worker and the CLI.

Address, namespace, TLS and API key come from ``temporalio.envconfig`` (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*; or a TOML profile via TEMPORAL_PROFILE),
so the same build talks to the dev server, a self-hosted cluster or Temporal Cloud.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.client import Client
from temporalio.converter import PayloadConverter
from temporalio.envconfig import ClientConfigProfile

from core.codec import data_converter
from core.settings import Settings
from core.tracing import temporal_interceptors


def connect_config(settings: Settings) -> dict[str, Any]:
    """Envconfig's view, falling back to our settings for address and namespace."""
    config: dict[str, Any] = dict(ClientConfigProfile.load().to_client_connect_config())
    config.setdefault("target_host", settings.temporal_address)
    config.setdefault("namespace", settings.temporal_namespace)
    return config


async def connect(
    settings: Settings, *, payload_converter_class: type[PayloadConverter] | None = None
) -> Client:
    """A client with the pydantic data converter (our payloads are pydantic models), which
    encrypts every payload when PAYLOAD_KEYS is set. The worker passes its own converter
    class (the same JSON on the wire: ``workers/payloads.py``). With tracing on
    (``core/tracing.py``) the client, and the workers built on it, carry the tracing
    interceptor."""
    config = connect_config(settings)
    target = config.pop("target_host")
    keys = settings.payload_keys.get_secret_value() if settings.payload_keys else None
    converter = data_converter(keys)
    if payload_converter_class is not None:
        converter = dataclasses.replace(converter, payload_converter_class=payload_converter_class)
    return await Client.connect(
        target, data_converter=converter, interceptors=temporal_interceptors(), **config
    )

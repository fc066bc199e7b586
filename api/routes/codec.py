"""The codec server: the Temporal UI sends encrypted payloads here and shows them decoded.

Same contract as Temporal's codec servers: ``POST /codec/decode`` and ``/codec/encode`` take
``{"payloads": [{"metadata": {name: base64}, "data": base64}]}`` (protobuf JSON) and answer
the same shape. Only staff may decode (an API key or console session of a staff role, or a
bearer token the UI passes on). In development only, the local Temporal UI's origin may call
it without credentials, so `make run` shows decoded payloads out of the box.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from temporalio.api.common.v1 import Payload

from api.deps import STAFF, Caller, SettingsDep, api_key_header, bearer, get_caller
from api.responses import errors
from core.codec import EncryptionCodec, parse_keys
from core.settings import AppEnv, Role, Settings

router = APIRouter(prefix="/codec", tags=["codec"])

B64 = Annotated[str, Field(max_length=4_000_000)]


class WirePayload(BaseModel):
    metadata: dict[Annotated[str, Field(max_length=200)], B64] = Field(
        default_factory=dict, max_length=50
    )
    data: B64 = ""


class WirePayloads(BaseModel):
    payloads: list[WirePayload] = Field(max_length=1000)


def ui_origin(settings: Settings) -> str:
    url = str(settings.temporal_ui_url).rstrip("/")
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/')[0]}"


def codec_caller(
    request: Request,
    settings: SettingsDep,
    api_key: Annotated[str | None, Depends(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller | None:
    """Staff only; the local UI in development needs nothing."""
    dev_ui = settings.app_env is AppEnv.DEVELOPMENT and request.headers.get("origin") == ui_origin(
        settings
    )
    try:
        caller = get_caller(request, settings, api_key, credentials)
    except HTTPException:
        if dev_ui:
            return None
        raise
    if caller.role not in (*STAFF, Role.ADMIN):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="only staff may decode payloads")
    return caller


def _codec(settings: Settings) -> EncryptionCodec | None:
    keys = settings.payload_keys.get_secret_value() if settings.payload_keys else ""
    return EncryptionCodec(parse_keys(keys)) if keys else None


CODEC = errors(
    400, 401, 403, 422, described={422: "Not the payloads shape, not base64, or not decryptable"}
)


def _to_proto(body: WirePayloads) -> list[Payload]:
    try:
        return [
            Payload(
                metadata={k: base64.b64decode(v, validate=True) for k, v in p.metadata.items()},
                data=base64.b64decode(p.data, validate=True),
            )
            for p in body.payloads
        ]
    except (binascii.Error, ValueError) as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="not base64") from e


def _to_wire(payloads: list[Payload]) -> WirePayloads:
    return WirePayloads(
        payloads=[
            WirePayload(
                metadata={k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                data=base64.b64encode(p.data).decode(),
            )
            for p in payloads
        ]
    )


@router.post("/decode", response_model=WirePayloads, responses=CODEC)
async def decode(
    body: WirePayloads,
    settings: SettingsDep,
    _: Annotated[Caller | None, Depends(codec_caller)],
) -> WirePayloads:
    """Encrypted payloads in, readable ones out (unencrypted ones pass through)."""
    codec = _codec(settings)
    payloads = _to_proto(body)
    if codec is None:
        return _to_wire(payloads)
    try:
        return _to_wire(await codec.decode(payloads))
    except Exception as e:  # wrong key or tampered data: say so, never echo the payload
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="payload cannot be decrypted here"
        ) from e


@router.post("/encode", response_model=WirePayloads, responses=CODEC)
async def encode(
    body: WirePayloads,
    settings: SettingsDep,
    _: Annotated[Caller | None, Depends(codec_caller)],
) -> WirePayloads:
    """What the UI sends back to a workflow (e.g. a signal typed in the UI), encrypted."""
    codec = _codec(settings)
    payloads = _to_proto(body)
    return _to_wire(await codec.encode(payloads) if codec else payloads)

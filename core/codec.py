"""Payload encryption for everything that goes through Temporal (AES-256-GCM).

Client PII travels in workflow inputs, activity arguments and results. Operators can read
Temporal histories, so every payload is encrypted before it leaves our processes and
decrypted when it comes back: the API's client, the worker and the CLI all use
``data_converter(settings)``. Keys rotate: the first key encrypts, every listed key decrypts,
and each payload names its key id in its (unencrypted) metadata. A payload without our
encoding (histories written before keys were set) passes through untouched.

``PAYLOAD_KEYS`` is ``id:base64key,id:base64key`` (32-byte keys, newest first). The Temporal
UI shows decoded payloads through the codec server endpoint (``api/routes/codec.py``).
"""

from __future__ import annotations

import base64
import dataclasses
import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class PayloadKeyError(ValueError):
    """A malformed ``PAYLOAD_KEYS`` value (never echoes the key material)."""


def parse_keys(text: str) -> list[tuple[str, bytes]]:
    """``id:base64,id:base64`` -> [(id, 32-byte key)], newest first."""
    keys: list[tuple[str, bytes]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key_id, sep, material = part.partition(":")
        if not sep or not key_id:
            raise PayloadKeyError("PAYLOAD_KEYS entries look like id:base64key")
        try:
            key = base64.b64decode(material, validate=True)
        except ValueError:
            raise PayloadKeyError(f"PAYLOAD_KEYS key {key_id!r} is not base64") from None
        if len(key) != 32:
            raise PayloadKeyError(f"PAYLOAD_KEYS key {key_id!r} must be 32 bytes (AES-256)")
        keys.append((key_id, key))
    if len({k for k, _ in keys}) != len(keys):
        raise PayloadKeyError("PAYLOAD_KEYS key ids must be unique")
    return keys


def new_key_entry(key_id: str) -> str:
    """A fresh ``id:base64key`` entry (``make run`` keeps one under DATA_DIR)."""
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise PayloadKeyError("at least one payload key is needed")
        self._current_id, current = keys[0]
        self._encrypt = AESGCM(current)
        self._by_id = {key_id: AESGCM(key) for key_id, key in keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = self._encrypt.encrypt(nonce, payload.SerializeToString(), None)
            out.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID: self._current_id.encode()},
                    data=nonce + sealed,
                )
            )
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                out.append(payload)  # written before encryption was on
                continue
            key_id = payload.metadata.get(KEY_ID, b"").decode()
            cipher = self._by_id.get(key_id)
            if cipher is None:
                raise ValueError(f"payload encrypted with unknown key id {key_id!r}")
            nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
            out.append(Payload.FromString(cipher.decrypt(nonce, sealed, None)))
        return out


def data_converter(keys_text: str | None) -> DataConverter:
    """The pydantic converter, encrypting when keys are configured."""
    if not keys_text:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter, payload_codec=EncryptionCodec(parse_keys(keys_text))
    )

"""Fixtures for screening and webhook tests: case rows, a fixture-list screener, a receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from integrations.sanctions import ReloadingScreener
from integrations.webhooks import verify_signature
from schemas.client import ClientProfile
from store.cases import insert_draft_case
from store.db import SessionFactory
from tests.conftest import new_ref
from tests.factories import profile

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sanctions"
SECRET = "test-webhook-secret"


@pytest.fixture(scope="session")
def fixture_screener() -> ReloadingScreener:
    """The small test lists (OFAC SDN + aliases + OpenSanctions sample)."""
    return ReloadingScreener(
        sdn=FIXTURES / "sdn.csv",
        alt=FIXTURES / "alt.csv",
        opensanctions=FIXTURES / "targets.simple.csv",
    )


async def make_case(sessions: SessionFactory, client: ClientProfile | None = None) -> str:
    """A draft case row, so the screening/delivery rows have their foreign key."""
    ref = new_ref("CMP")
    async with sessions.begin() as session:
        await session.execute(
            insert_draft_case(ref=ref, client=client or profile(), requested_by="test")
        )
    return ref


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP endpoint that checks signatures and can be told to fail."""

    url: str
    secret: str
    received: list[Received] = field(default_factory=list)
    fail_statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int) -> None:
        with self.lock:
            self.fail_statuses.extend([status] * count)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            ok = verify_signature(
                secret=receiver.secret,
                timestamp=self.headers.get("X-Onboarding-Timestamp", ""),
                signature=self.headers.get("X-Onboarding-Signature", ""),
                body=body,
            )
            with receiver.lock:
                receiver.received.append(Received(dict(self.headers.items()), body, ok))
                status = receiver.fail_statuses.pop(0) if receiver.fail_statuses else None
            if status is None:
                status = 204 if ok else 401
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver("", SECRET)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/onboarding"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)

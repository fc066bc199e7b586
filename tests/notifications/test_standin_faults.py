"""The stand-ins' random fault profile (the chaos suite's R4) and the webhook receiver."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter

import httpx
import pytest

from integrations.webhooks import WebhookSender
from schemas.webhooks import WebhookEvent
from tests.standins import running_sendgrid_standin
from tests.standins.webhook_standin import running_webhook_standin

KEY = "SG.fault-key"
SECRET = "whsec_" + base64.b64encode(b"chaos-receiver-secret").decode()
HTTP = httpx.Client()  # one pool: a fresh client per request is slow on a busy machine
MAIL = {
    "personalizations": [{"to": [{"email": "a@example.com"}]}],
    "from": {"email": "b@example.com"},
    "subject": "s",
    "content": [{"type": "text/plain", "value": "t"}],
}


def send(base_url: str, timeout: float = 5) -> int:
    try:
        response = HTTP.post(
            f"{base_url}/v3/mail/send",
            json=MAIL,
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=timeout,
        )
    except httpx.TimeoutException:
        return 0
    return response.status_code


def test_fault_profile_fails_about_the_share_asked_with_the_statuses_asked() -> None:
    with running_sendgrid_standin(api_key=KEY) as sg:
        sg.set_fault_profile(0.5, statuses=(429, 500, 400), seed=7)
        codes = Counter(send(sg.base_url) for _ in range(100))
        assert set(codes) <= {202, 429, 500, 400}
        assert 25 <= 100 - codes[202] <= 75
        assert all(codes[s] > 0 for s in (429, 500, 400))
        assert sum(sg.injected.values()) == 100 - codes[202] == 100 - len(sg.accepted)
        sg.clear_fault_profile()
        assert send(sg.base_url) == 202


def test_a_stall_times_the_client_out_but_the_message_is_accepted() -> None:
    with running_sendgrid_standin(api_key=KEY) as sg:
        sg.set_fault_profile(1.0, statuses=(), stall_seconds=0.6, seed=1)
        assert send(sg.base_url, timeout=0.2) == 0  # the client gave up
        deadline = time.monotonic() + 5
        while not sg.accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(sg.accepted) == 1  # ...and yet the provider has the message
        assert sg.requests[0].stalled and sg.injected == {"stall": 1}


def test_fault_profile_can_spare_some_methods_and_refuses_nonsense() -> None:
    with running_sendgrid_standin(api_key=KEY) as sg:
        sg.set_fault_profile(1.0, statuses=(500,), methods=("GET",))
        assert send(sg.base_url) == 202  # POST spared
        assert httpx.get(f"{sg.base_url}/v3/mail/send").status_code == 500
        with pytest.raises(ValueError, match="probability"):
            sg.set_fault_profile(1.5)
        with pytest.raises(ValueError, match="statuses or a stall"):
            sg.set_fault_profile(0.5, statuses=())


def event(n: int = 1, event_type: str = "case.resolved") -> WebhookEvent:
    return WebhookEvent(
        event_id=f"C-1:{event_type}:{n}",
        event_type=event_type,
        case_ref="C-1",
        occurred_at="2026-11-30T12:00:00Z",
    )


async def test_webhook_receiver_verifies_dedupes_on_id_and_reports_duplicates() -> None:
    with running_webhook_standin(SECRET) as hooks:
        sender = WebhookSender(hooks.url, SECRET)
        assert await sender.send(event()) == 200
        assert await sender.send(event()) == 200  # a redelivery: acknowledged, not processed
        assert len(hooks.processed) == 1 and hooks.redelivered == {"C-1:case.resolved:1": 1}
        assert hooks.duplicates() == {}
        await sender.send(event(n=2))  # the same event under a new id: a real duplicate
        assert hooks.duplicates() == {
            ("C-1", "case.resolved"): ["C-1:case.resolved:1", "C-1:case.resolved:2"]
        }
        forged = WebhookSender(hooks.url, "whsec_" + base64.b64encode(b"other").decode())
        body, headers = forged.build_request(event(n=3))
        r = httpx.post(hooks.url, content=body, headers=headers)
        assert r.status_code == 401 and hooks.rejected_signatures == 1
        assert json.loads(body)["event_id"] not in hooks.processed

"""Stand-in for Twilio's ``POST /2010-04-01/Accounts/{Sid}/Messages.json``.

Checks HTTP Basic auth (Account SID : Auth Token), the form-encoded ``To``,
``From`` and ``Body`` fields with Twilio's own error codes, and answers
``201`` with a Message resource or Twilio's JSON error shape
``{"code", "message", "more_info", "status"}``.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from tests.standins._server import RecordedRequest, Reply, StandinServer, json_reply

DEFAULT_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
DEFAULT_AUTH_TOKEN = "test-auth-token-0123456789abcdef"

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_URL = re.compile(r"^https?://[^\s/]+(/[^\s]*)?$")
_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
_BODY_LIMIT = 1600
_INJECTED: dict[int, tuple[int, str]] = {
    400: (21211, "Invalid 'To' Phone Number"),
    401: (20003, "Authenticate"),
    404: (20404, "The requested resource was not found"),
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}


def twilio_error(status: int, code: int, message: str) -> Reply:
    """Twilio's legacy REST error body (what the 2010-04-01 API returns)."""
    return json_reply(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


class TwilioStandin(StandinServer):
    """Answers like api.twilio.com for creating Messages."""

    name = "twilio"

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, Any]] = []

    def reset(self) -> None:
        super().reset()
        self.messages.clear()

    def injected_error(self, status: int, message: str | None) -> Reply:
        code, default = _INJECTED.get(status, (status, "Error"))
        return twilio_error(status, code, message or default)

    def handle(self, request: RecordedRequest) -> Reply:
        match = _PATH.match(request.path)
        if match is None:
            return twilio_error(404, 20404, "The requested resource was not found")
        if request.method not in ("POST", "GET"):
            return twilio_error(405, 20004, "Method not allowed")
        if request.basic_auth != (self.account_sid, self.auth_token):
            return twilio_error(401, 20003, "Authenticate")
        if match["sid"] != self.account_sid:
            return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        if request.method == "GET":
            return self._list(request)
        content_type = (request.header("content-type") or "").split(";")[0].strip()
        if content_type != "application/x-www-form-urlencoded":
            return twilio_error(
                400, 20001, "Content-Type must be application/x-www-form-urlencoded"
            )
        form = request.form
        to = form.get("To", "")
        sender = form.get("From", "")
        body = form.get("Body", "")
        if not to:
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to):
            return twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not sender and not form.get("MessagingServiceSid"):
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if sender and not _E164.match(sender):
            return twilio_error(400, 21212, f"Invalid From Number (caller ID): {sender}")
        if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
            return twilio_error(400, 21602, "Message body is required.")
        if len(body) > _BODY_LIMIT:
            return twilio_error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        callback = form.get("StatusCallback")
        if callback is not None and not _URL.match(callback):
            return twilio_error(400, 21609, f"Invalid StatusCallback URL: {callback}")
        message = self._message_resource(to, sender, body, form.get("MessagingServiceSid"))
        if callback is not None:
            message = {**message, "status_callback": callback}
        self.messages.append(message)
        return json_reply(201, message)

    def _list(self, request: RecordedRequest) -> Reply:
        """``GET …/Messages.json?To=&From=&PageSize=``: newest first, like Twilio."""
        to = request.query["To"][0] if request.query.get("To") else None
        sender = request.query["From"][0] if request.query.get("From") else None
        try:
            page_size = min(1000, int((request.query.get("PageSize") or ["50"])[0]))
        except ValueError:
            return twilio_error(400, 20001, "Invalid PageSize")
        with self._lock:
            stored = list(self.messages)
        found = [
            m
            for m in reversed(stored)
            if (to is None or m["to"] == to) and (sender is None or m["from"] == sender)
        ][:page_size]
        uri = request.path
        return json_reply(
            200,
            {
                "messages": found,
                "end": max(0, len(found) - 1),
                "first_page_uri": uri,
                "next_page_uri": None,
                "page": 0,
                "page_size": page_size,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            },
        )

    def _message_resource(
        self, to: str, sender: str, body: str, service_sid: str | None
    ) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC), usegmt=True)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender or None,
            "messaging_service_sid": service_sid,
            "num_media": "0",
            "num_segments": str(max(1, math.ceil(len(body) / 153)) if len(body) > 160 else 1),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": to,
            "uri": uri,
        }


@contextmanager
def running_twilio_standin(
    account_sid: str = DEFAULT_ACCOUNT_SID,
    auth_token: str = DEFAULT_AUTH_TOKEN,
) -> Iterator[TwilioStandin]:
    """``with running_twilio_standin() as tw:`` then point the sender at ``tw.base_url``."""
    standin = TwilioStandin(account_sid=account_sid, auth_token=auth_token)
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()

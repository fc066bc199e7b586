"""Stand-in for SendGrid's ``POST /v3/mail/send`` and the Email Activity ``GET /v3/messages``.

Mirrors the parts of the real contract the adapter depends on: Bearer auth,
the required JSON fields, ``text/plain`` before ``text/html``, ``202`` with an
empty body and an ``X-Message-Id`` header, and SendGrid's error shape
``{"errors": [{"message", "field", "help"}]}``.

The activity endpoint answers the query forms the adapter sends
(``unique_args['name']="value"`` and ``to_email="value"``, joined by ``AND``) from the mail
it accepted, as ``{"messages": [{"msg_id", "from_email", "subject", "to_email", "status",
"opens_count", "clicks_count", "last_event_time"}]}``. ``activity_api = False`` makes it
answer 403 like an account without the Email Activity add-on.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.standins._server import RecordedRequest, Reply, StandinServer, json_reply

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_INJECTED_MESSAGES = {
    400: "Bad Request",
    401: "The provided authorization grant is invalid, expired, or revoked",
    403: "access forbidden",
    413: "Payload too large",
    429: "too many requests",
    500: "internal error",
    503: "service unavailable",
}


@dataclass(frozen=True)
class AcceptedMail:
    """A request the stand-in accepted, with the message id it returned."""

    message_id: str
    body: dict[str, Any]
    accepted_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def to_email(self) -> str:
        return str(self.body["personalizations"][0]["to"][0]["email"])


_ARG_CLAUSE = re.compile(r"^unique_args\['(?P<name>[^']+)'\]=\"(?P<value>[^\"]*)\"$")
_TO_CLAUSE = re.compile(r'^to_email="(?P<value>[^"]*)"$')


def _error(field: str | None, message: str) -> dict[str, Any]:
    return {"message": message, "field": field, "help": None}


class SendGridStandin(StandinServer):
    """Answers like api.sendgrid.com for the mail send endpoint."""

    name = "sendgrid"

    def __init__(self, api_key: str = "SG.test-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.accepted: list[AcceptedMail] = []
        self.activity_api = True

    def reset(self) -> None:
        super().reset()
        self.accepted.clear()

    def injected_error(self, status: int, message: str | None) -> Reply:
        text = message or _INJECTED_MESSAGES.get(status, "error")
        headers: dict[str, str] = {}
        if status == 429:
            headers = {
                "X-RateLimit-Limit": "600",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": "1",
            }
        return json_reply(status, {"errors": [_error(None, text)]}, headers)

    def handle(self, request: RecordedRequest) -> Reply:
        if request.path == "/v3/messages" and request.method == "GET":
            return self._activity(request)
        if request.path != "/v3/mail/send":
            return json_reply(404, {"errors": [_error(None, "resource not found")]})
        if request.method != "POST":
            return json_reply(405, {"errors": [_error(None, "method not allowed")]})
        if request.bearer_token != self.api_key:
            return json_reply(401, {"errors": [_error(None, _INJECTED_MESSAGES[401])]})
        content_type = (request.header("content-type") or "").split(";")[0].strip()
        if content_type != "application/json":
            return json_reply(
                415, {"errors": [_error(None, "Content-Type should be application/json.")]}
            )
        if not isinstance(request.json, dict):
            return json_reply(400, {"errors": [_error(None, "Bad Request")]})
        errors = validate_mail_send(request.json)
        if errors:
            return json_reply(400, {"errors": errors})
        message_id = secrets.token_urlsafe(16)[:22]
        self.accepted.append(AcceptedMail(message_id=message_id, body=request.json))
        return 202, {"X-Message-Id": message_id}, b""

    def _activity(self, request: RecordedRequest) -> Reply:
        """``GET /v3/messages?query=…&limit=…`` over the accepted mail."""
        if request.bearer_token != self.api_key:
            return json_reply(401, {"errors": [_error(None, _INJECTED_MESSAGES[401])]})
        if not self.activity_api:
            return json_reply(403, {"errors": [_error(None, _INJECTED_MESSAGES[403])]})
        query = (request.query.get("query") or [""])[0]
        try:
            limit = int((request.query.get("limit") or ["10"])[0])
        except ValueError:
            return json_reply(400, {"errors": [_error("limit", "limit must be an integer")]})
        wanted_args: dict[str, str] = {}
        wanted_to: str | None = None
        for clause in (c.strip() for c in query.split(" AND ") if c.strip()):
            if m := _ARG_CLAUSE.match(clause):
                wanted_args[m["name"]] = m["value"]
            elif m := _TO_CLAUSE.match(clause):
                wanted_to = m["value"]
            else:
                return json_reply(400, {"errors": [_error("query", f"invalid query {clause!r}")]})
        with self._lock:
            accepted = list(self.accepted)
        found = [
            mail
            for mail in accepted
            if (wanted_to is None or mail.to_email == wanted_to)
            and all(
                str(mail.body.get("custom_args", {}).get(k)) == v for k, v in wanted_args.items()
            )
        ]
        messages = [
            {
                "from_email": mail.body["from"]["email"],
                "msg_id": f"{mail.message_id}.filter0001p1mdw1-1-1-0",
                "subject": mail.body.get("subject", ""),
                "to_email": mail.to_email,
                "status": "processed",
                "opens_count": 0,
                "clicks_count": 0,
                "last_event_time": mail.accepted_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            for mail in reversed(found[-limit:])
        ]
        return json_reply(200, {"messages": messages})


def validate_mail_send(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The subset of SendGrid's v3 mail/send validation the adapter relies on."""
    errors: list[dict[str, Any]] = []
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(
            _error(
                "personalizations",
                "The personalizations field is required and must have at least one "
                "personalization.",
            )
        )
        personalizations = []
    all_have_subject = bool(personalizations)
    for i, pers in enumerate(personalizations):
        if not isinstance(pers, dict):
            errors.append(_error(f"personalizations.{i}", "Invalid type. Expected: object."))
            all_have_subject = False
            continue
        if not pers.get("subject"):
            all_have_subject = False
        to = pers.get("to")
        if not isinstance(to, list) or not to:
            errors.append(
                _error(
                    f"personalizations.{i}.to",
                    "The to array is required for all personalization objects, and must "
                    "have at least one email object with a valid email address.",
                )
            )
            continue
        for j, rcpt in enumerate(to):
            email = rcpt.get("email") if isinstance(rcpt, dict) else None
            if not isinstance(email, str) or not _EMAIL.match(email):
                errors.append(
                    _error(
                        f"personalizations.{i}.to.{j}.email",
                        "Does not contain a valid address.",
                    )
                )
    sender = body.get("from")
    sender_email = sender.get("email") if isinstance(sender, dict) else None
    if not isinstance(sender_email, str) or not _EMAIL.match(sender_email):
        errors.append(
            _error(
                "from",
                "The from object must be provided for every email send. It is an object "
                "that requires the email parameter, but may also contain a name parameter.",
            )
        )
    has_template = bool(body.get("template_id"))
    subject = body.get("subject")
    if not has_template and not all_have_subject and (not isinstance(subject, str) or not subject):
        errors.append(
            _error(
                "subject",
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
            )
        )
    content = body.get("content")
    if content is None and not has_template:
        errors.append(
            _error(
                "content",
                "Unless a valid template_id is provided, the content parameter is required. "
                "There must be at least one defined content block.",
            )
        )
    elif content is not None:
        errors.extend(_validate_content(content))
    custom_args = body.get("custom_args")
    if custom_args is not None:
        if not isinstance(custom_args, dict):
            errors.append(_error("custom_args", "Invalid type. Expected: object."))
        else:
            for key, value in custom_args.items():
                if not isinstance(value, str):
                    errors.append(_error(f"custom_args.{key}", "Invalid type. Expected: string."))
    return errors


def _validate_content(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list) or not content:
        return [_error("content", "There must be at least one defined content block.")]
    errors: list[dict[str, Any]] = []
    types: list[str] = []
    for i, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(_error(f"content.{i}.type", "The content type is required."))
            continue
        types.append(block["type"])
        value = block.get("value")
        if not isinstance(value, str) or not value:
            errors.append(
                _error(
                    f"content.{i}.value",
                    "The content value must be a string at least one character in length.",
                )
            )
    expected = [t for t in ("text/plain", "text/html") if t in types]
    if types[: len(expected)] != expected:
        errors.append(
            _error(
                "content",
                "If present, text/plain must be first, followed by text/html, followed by "
                "any other content.",
            )
        )
    return errors


@contextmanager
def running_sendgrid_standin(api_key: str = "SG.test-key") -> Iterator[SendGridStandin]:
    """``with running_sendgrid_standin() as sg:`` then point the sender at ``sg.base_url``."""
    standin = SendGridStandin(api_key=api_key)
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()

"""Reading a SendGrid Inbound Parse post (default "not raw" mode) into a ``ParsedEmail``.

Why it is its own module: the post is untrusted input, and everything that turns it into
values we can act on lives here, apart from the database, blob store and Temporal work in
``api.services.inbound_email``, so it can be read and tested on its own:

- **Credentials.** ``token_ok`` and ``basic_auth_ok`` check the URL token and the Basic auth
  pair in constant time.
- **The form.** ``read_email`` reads the fields we use (``from``, ``to``, ``cc``, ``envelope``,
  ``subject``, ``text``/``html``, ``headers``, ``charsets``, ``attachment-info``,
  ``attachment<n>``), honours SendGrid's charsets, and takes the Message-ID (or a hash) as the
  id a repeat post is recognised by. A malformed field is named in ``problems`` rather than
  raised, so the message is still kept (quarantined).
- **Text.** Every value is cleaned and bounded (no control characters, NUL or lone surrogates,
  which Postgres refuses); the reply loses its quoted history; an HTML-only mail is rendered
  as plain text.
- **Case references.** Plus-addresses (``cases+<REF>@``) and reference-shaped words of the
  subject; which case they name is decided by ``inbound_email.decide``.
- **Attachments.** Each is judged by its content (PDF, PNG or JPEG within the size and count
  limits): held in memory, or refused with the reason.

It does no I/O beyond reading the form (the attachment files included): storing, deciding and
attaching are ``inbound_email``'s.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import hashlib
import hmac
import html as html_lib
import json
import re
from dataclasses import dataclass, field
from email.parser import HeaderParser
from email.utils import getaddresses, parseaddr
from typing import Any

from starlette.datastructures import FormData, UploadFile

from api.services.documents import sanitize_filename
from core.settings import Settings
from integrations.filetypes import ALLOWED_DESCRIPTION, sniff
from schemas.documents import DocumentKind

MESSAGE_MAX_CHARS = 2000  # ClientMessage.text (schemas.text.Text)
BODY_MAX_CHARS = 20_000  # what the row keeps of the reply
SCAN_MAX_CHARS = 200_000  # what quote stripping reads of a body (bounds the regex work)
SUBJECT_MAX_CHARS = 998  # RFC 5322 line limit
ADDRESS_MAX_CHARS = 320
PROVIDER_ID_MAX_CHARS = 300  # inbound_messages.provider_id
ACTOR_MAX_CHARS = 120
MAX_FIELD_BYTES = 32 * 1024 * 1024  # one text field of the form (SendGrid caps a mail at 30 MB)
READ_CHUNK_BYTES = 64 * 1024

# what became of an attachment (``read_email`` holds or refuses it; attaching files it)
HELD = "held"
DOCUMENT = "document"
REFUSED = "refused"

_CONTROL_BLOCK = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_CONTROL_LINE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_SPACES = re.compile(r"[ \t]+")
_BLANK_RUNS = re.compile(r"\n{3,}")
# A case reference in running text: letters, a hyphen, then letters/digits/_/- (ACME-0001,
# C-7K2M9QPRTX, PO-2026-0042), not glued to a longer word.
_REF_IN_TEXT = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z]{1,5}-[A-Za-z0-9][A-Za-z0-9_-]{0,58}")
_REF_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{2,63}$")  # schemas.case.CASE_REF_PATTERN
_ATTACHMENT_FIELD = re.compile(r"^attachment([1-9][0-9]{0,3})$")
_WROTE = re.compile(r"^\s*On\b.{0,400}\bwrote:\s*$", re.IGNORECASE)
_ORIGINAL = re.compile(
    r"^\s*-{2,}\s*(original message|forwarded message)\s*-{2,}\s*$", re.IGNORECASE
)


# ------------------------------------------------------------------------------ credentials
def _same(given: bytes, expected: bytes) -> bool:
    """Constant time whatever the lengths (both sides hashed first)."""
    return hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(expected).digest())


def token_ok(settings: Settings, token: str) -> bool:
    expected = settings.inbound_email_token.get_secret_value()
    return _same(token.encode("utf-8", "surrogatepass"), expected.encode())


def basic_auth_ok(settings: Settings, header: str | None) -> bool:
    """``Authorization: Basic base64(user:password)`` with the configured pair."""
    if not header:
        return False
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    user, sep, password = decoded.partition(b":")
    user_ok = _same(user, settings.inbound_email_user.encode())
    password_ok = _same(password, settings.inbound_email_password.get_secret_value().encode())
    return bool(sep) and user_ok and password_ok


# ------------------------------------------------------------------------------ text
def clean_line(value: str, limit: int) -> str:
    """One line: control characters and folding become spaces; NUL and lone surrogates, which
    Postgres refuses, cannot get through."""
    return _SPACES.sub(" ", _CONTROL_LINE.sub(" ", value)).strip()[:limit]


def clean_block(value: str, limit: int) -> str:
    """Text that may span lines: control characters other than tab and newline removed."""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_BLOCK.sub("", text)[:limit]


def html_to_text(html: str) -> str:
    """A plain rendering of an HTML-only email, without quoted (``blockquote``) history."""
    html = html[:SCAN_MAX_CHARS]
    html = re.sub(r"(?is)<(script|style|head)\b[^>]*>.*?</\1\s*>", " ", html)
    html = re.sub(r"(?is)<blockquote\b[^>]*>.*?</blockquote\s*>", "\n", html)
    html = re.sub(r"(?i)<br\s*/?>|</(p|div|li|tr|h[1-6])\s*>", "\n", html)
    html = re.sub(r"<[^>]*>", "", html)
    return html_lib.unescape(html)


def reply_text(text: str) -> str:
    """The reply without its quoted history: lines starting with ``>`` go, and everything from
    an ``On ... wrote:`` line (also wrapped over two lines) or an "Original Message" rule."""
    lines = clean_block(text[:SCAN_MAX_CHARS], SCAN_MAX_CHARS).split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if _ORIGINAL.match(line) or _WROTE.match(line):
            break
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if line.lstrip().startswith("On ") and _WROTE.match(f"{line} {nxt}"):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    return _BLANK_RUNS.sub("\n\n", "\n".join(kept)).strip()[:BODY_MAX_CHARS]


def message_text(body: str, attachments: list[dict[str, Any]]) -> str:
    """What the case hears: the reply, capped to a client message's limit; never empty."""
    text = body.strip()
    if not text:
        names = ", ".join(str(a.get("filename")) for a in attachments[:10])
        text = f"(an email with no text; attached: {names})" if names else "(an empty email)"
    if len(text) > MESSAGE_MAX_CHARS:
        text = text[: MESSAGE_MAX_CHARS - 1].rstrip() + "…"
    return text


def client_actor(sender: str) -> str:
    """The actor the case records: the client, and the address they wrote from."""
    return f"client:{sender}"[:ACTOR_MAX_CHARS] if sender else "client"


def document_kind(filename: str) -> DocumentKind:
    """The kind a file name spells out (``proof_of_address.pdf``), else ``other``: the upload
    service files it, and a case manager classifies it."""
    stem = re.sub(r"[^a-z0-9]+", "_", filename.rsplit(".", 1)[0].lower())
    for kind in DocumentKind:
        if kind is not DocumentKind.OTHER and kind.value in stem:
            return kind
    return DocumentKind.OTHER


# ------------------------------------------------------------------------------ case refs
def plus_refs(addresses: list[str]) -> list[str]:
    """References from plus-addresses (``cases+ACME-0001@example.com``)."""
    refs: list[str] = []
    for address in addresses:
        local = address.rpartition("@")[0]
        tag = local.partition("+")[2]
        if tag and _REF_OK.match(tag) and tag not in refs:
            refs.append(tag)
    return refs


def subject_refs(subject: str) -> list[str]:
    """Reference-shaped words of the subject, in order (at most 10)."""
    refs: list[str] = []
    for found in _REF_IN_TEXT.findall(subject):
        ref = found.rstrip("-_")
        if _REF_OK.match(ref) and ref not in refs:
            refs.append(ref)
    return refs[:10]


# ------------------------------------------------------------------------------ reading
@dataclass
class ParsedEmail:
    """The post as we use it. ``problems`` name malformed fields (the message is then kept,
    but quarantined)."""

    provider_id: str
    sender: str
    sender_field: str
    recipients: list[str]
    subject: str
    body: str
    attachments: list[dict[str, Any]]
    held: dict[int, bytes] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def recipient(self) -> str | None:
        tagged = next((a for a in self.recipients if "+" in a.rpartition("@")[0]), None)
        return tagged or (self.recipients[0] if self.recipients else None)


def _recode(value: str, charset: object) -> str:
    """Honour SendGrid's ``charsets`` for a field Starlette read as UTF-8 (falling back to
    Latin-1 for bytes that are not UTF-8): such bytes are decoded again in the named charset."""
    if not isinstance(charset, str) or not value or value.isascii():
        return value
    try:
        name = codecs.lookup(charset.strip()).name
    except LookupError:
        return value
    if name in ("utf-8", "latin-1", "iso8859-1"):
        return value
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value  # it was read as UTF-8: characters beyond Latin-1
    try:
        raw.decode("utf-8")
        return value  # valid UTF-8, so Starlette read it as such
    except UnicodeDecodeError:
        return raw.decode(name, errors="replace")


def _json_object(raw: str, name: str, problems: list[str]) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        problems.append(f"{name} is not valid JSON")
        return {}
    if not isinstance(value, dict):
        problems.append(f"{name} is not a JSON object")
        return {}
    return value


def _addresses(*headers: str) -> list[str]:
    found: list[str] = []
    for _, address in getaddresses([h for h in headers if h]):
        address = clean_line(address, ADDRESS_MAX_CHARS).lower()
        if "@" in address and address not in found:
            found.append(address)
    return found


def _provider_id(headers: str, fallback: list[str]) -> str:
    """The Message-ID header; without one (or a huge one), a hash of what identifies the mail,
    so a repeat post still finds it."""
    message_id = ""
    with contextlib.suppress(Exception):  # a broken header block: no id
        message_id = clean_line(str(HeaderParser().parsestr(headers).get("Message-ID") or ""), 2000)
    if message_id and len(message_id) <= PROVIDER_ID_MAX_CHARS:
        return message_id
    digest = hashlib.sha256("\x1f".join([message_id, *fallback]).encode("utf-8", "replace"))
    return f"sha256:{digest.hexdigest()}"


async def _read_capped(upload: UploadFile, limit: int) -> bytes | None:
    """The file's bytes, or None once it passes ``limit``."""
    parts: list[bytes] = []
    total = 0
    while chunk := await upload.read(READ_CHUNK_BYTES):
        total += len(chunk)
        if total > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


async def read_email(form: FormData, settings: Settings) -> ParsedEmail:
    """The SendGrid fields we use, cleaned and bounded, and each attachment judged: held
    (a PDF, PNG or JPEG within the size limit, up to ``inbound_max_attachments``) or refused
    with the reason."""
    problems: list[str] = []

    def raw(name: str) -> str:
        values = form.getlist(name)
        if not values:
            return ""
        if not isinstance(values[0], str):
            problems.append(f"{name} was sent as a file")
            return ""
        return values[0]

    charsets = _json_object(raw("charsets"), "charsets", [])  # advisory only

    def text(name: str) -> str:
        return _recode(raw(name), charsets.get(name))

    sender_field = clean_line(text("from"), ADDRESS_MAX_CHARS)
    sender = clean_line(parseaddr(sender_field)[1], ADDRESS_MAX_CHARS).lower()
    if "@" not in sender:
        sender = ""
    envelope = _json_object(raw("envelope"), "envelope", problems)
    envelope_to = envelope.get("to")
    envelope_to = [str(a) for a in envelope_to] if isinstance(envelope_to, list) else []
    recipients = _addresses(text("to"), text("cc"), ", ".join(envelope_to))
    subject = clean_line(text("subject"), SUBJECT_MAX_CHARS)
    body_source = text("text")
    if not body_source.strip() and (html := text("html")):
        body_source = html_to_text(html)
    body = reply_text(body_source)
    headers = raw("headers")
    provider_id = _provider_id(headers, [sender_field, subject, ",".join(recipients), body])
    info = _json_object(raw("attachment-info"), "attachment-info", problems)
    count = raw("attachments").strip()
    if count and not count.isdigit():
        problems.append("attachments is not a number")

    files: list[tuple[int, UploadFile]] = []
    for name, value in form.multi_items():
        matched = _ATTACHMENT_FIELD.match(name)
        if matched is None:
            continue
        if isinstance(value, str):
            problems.append(f"{name} is not a file")
            continue
        files.append((int(matched.group(1)), value))
    files.sort(key=lambda item: item[0])

    attachments: list[dict[str, Any]] = []
    held: dict[int, bytes] = {}
    for position, (index, upload) in enumerate(files):
        meta = info.get(f"attachment{index}")
        meta = meta if isinstance(meta, dict) else {}
        given = meta.get("filename") or meta.get("name") or upload.filename or ""
        filename = sanitize_filename(clean_line(str(given), 500))
        declared = clean_line(str(meta.get("type") or upload.content_type or ""), 100) or None
        entry: dict[str, Any] = {
            "index": index,
            "filename": filename,
            "declared_type": declared,
            "content_type": None,
            "size": None,
            "kind": None,
        }
        if position >= settings.inbound_max_attachments:
            limit = settings.inbound_max_attachments
            entry.update(outcome=REFUSED, reason=f"over the limit of {limit} attachments per email")
        elif (data := await _read_capped(upload, settings.max_upload_bytes)) is None:
            entry.update(
                outcome=REFUSED,
                reason=f"larger than the {settings.max_upload_bytes} byte upload limit",
            )
        else:
            entry["size"] = len(data)
            sniffed = sniff(data)
            if not sniffed.allowed:
                entry.update(
                    outcome=REFUSED,
                    reason=f"not a {ALLOWED_DESCRIPTION} (judged by content, not by name)",
                )
            else:
                entry.update(
                    outcome=HELD,
                    content_type=sniffed.content_type,
                    sha256=hashlib.sha256(data).hexdigest(),
                    kind=document_kind(filename).value,
                )
                held[index] = data
        attachments.append(entry)

    return ParsedEmail(
        provider_id=provider_id,
        sender=sender,
        sender_field=sender_field,
        recipients=recipients,
        subject=subject,
        body=body,
        attachments=attachments,
        held=held,
        problems=problems,
    )

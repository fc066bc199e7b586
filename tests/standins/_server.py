"""Shared plumbing: threaded HTTP server, request recording, failure injection."""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

Reply = tuple[int, dict[str, str], bytes]
"""(status, headers, body) returned by a stand-in's handler."""


@dataclass
class RecordedRequest:
    """One request as the stand-in saw it, parsed for easy assertions."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    form_multi: dict[str, list[str]] = field(default_factory=dict)
    basic_auth: tuple[str, str] | None = None
    bearer_token: str | None = None
    response_status: int = 0
    injected_failure: bool = False
    stalled: bool = False  # the reply was held back by an injected stall

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class _Fault:
    status: int | None  # None = no error, only a stall
    stall_seconds: float = 0.0
    message: str | None = None


@dataclass
class _FaultProfile:
    """Random faults, drawn per request (see ``StandinServer.set_fault_profile``)."""

    probability: float
    statuses: tuple[int, ...]
    stall_seconds: float
    methods: frozenset[str] | None
    rng: random.Random

    def draw(self, method: str) -> _Fault | None:
        if self.methods is not None and method.upper() not in self.methods:
            return None
        if self.rng.random() >= self.probability:
            return None
        kinds: list[int | None] = list(self.statuses)
        if self.stall_seconds > 0:
            kinds.append(None)  # a stall, then the request is served normally
        kind = self.rng.choice(kinds)
        if kind is None:
            return _Fault(None, stall_seconds=self.stall_seconds)
        return _Fault(kind)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, payload = self.server.standin._handle(self, body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s: " + format, self.server.standin.name, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, standin: StandinServer) -> None:
        self.standin = standin
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out on purpose close the socket mid-reply; not a test failure.
        logger.debug(
            "%s: connection error from %s", self.standin.name, client_address, exc_info=True
        )


class StandinServer(ABC):
    """Base class; subclasses implement ``handle`` and ``injected_error``."""

    name = "standin"

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._faults: deque[_Fault] = deque()
        self._profile: _FaultProfile | None = None
        self.injected: Counter[str] = Counter()  # "429", "500", "stall", ...: what was injected
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> StandinServer:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "stand-in not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- test controls ----------------------------------------------------------

    def fail_next(self, count: int = 1, status: int = 500, message: str | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` in the provider's error shape."""
        with self._lock:
            self._faults.extend(_Fault(status, message=message) for _ in range(count))

    def stall_next(self, count: int = 1, seconds: float = 1.0) -> None:
        """Delay the next ``count`` responses so client timeouts can be tested."""
        with self._lock:
            self._faults.extend(_Fault(None, stall_seconds=seconds) for _ in range(count))

    def set_fault_profile(
        self,
        probability: float,
        *,
        statuses: tuple[int, ...] = (429, 500, 400),
        stall_seconds: float = 0.0,
        seed: int | None = None,
        methods: tuple[str, ...] | None = None,
    ) -> None:
        """From now on, each request (of ``methods``, default all) fails with ``probability``:
        with one of ``statuses`` (in the provider's error shape), or, when ``stall_seconds`` is
        set, with a stall that is drawn like one more status. A stalled request is held for
        ``stall_seconds`` and then served normally: a client that timed out meanwhile was in
        fact served (the message was accepted), the ambiguous case a sender must not turn into
        a duplicate. Queued ``fail_next``/``stall_next`` faults come first. ``seed`` makes the
        draws repeatable (their order still depends on how requests interleave)."""
        if not 0 <= probability <= 1:
            raise ValueError("probability must be between 0 and 1")
        if not statuses and stall_seconds <= 0:
            raise ValueError("a fault profile needs statuses or a stall")
        with self._lock:
            self._profile = _FaultProfile(
                probability=probability,
                statuses=tuple(statuses),
                stall_seconds=stall_seconds,
                methods=frozenset(m.upper() for m in methods) if methods is not None else None,
                rng=random.Random(seed),
            )

    def clear_fault_profile(self) -> None:
        """Stop the random faults (queued ``fail_next``/``stall_next`` ones stay)."""
        with self._lock:
            self._profile = None

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self._profile = None
            self.injected.clear()

    @property
    def last(self) -> RecordedRequest:
        with self._lock:
            assert self.requests, f"{self.name} stand-in received no requests"
            return self.requests[-1]

    # -- subclass API -------------------------------------------------------------

    @abstractmethod
    def handle(self, request: RecordedRequest) -> Reply:
        """Answer one request the way the real API would."""

    @abstractmethod
    def injected_error(self, status: int, message: str | None) -> Reply:
        """The real API's error body for an injected failure."""

    # -- internals ----------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> Reply:
        request = _parse(handler, body)
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            if fault is None and self._profile is not None:
                fault = self._profile.draw(request.method)
            if fault is not None:
                self.injected[str(fault.status) if fault.status is not None else "stall"] += 1
            self.requests.append(request)
        if fault is not None and fault.stall_seconds:
            request.stalled = True
            time.sleep(fault.stall_seconds)
        if fault is not None and fault.status is not None:
            request.injected_failure = True
            reply = self.injected_error(fault.status, fault.message)
        else:
            try:
                reply = self.handle(request)
            except Exception:  # a stand-in bug must show up as a 500, not a hang
                logger.exception("%s stand-in crashed", self.name)
                reply = (500, {"Content-Type": "text/plain"}, b"stand-in error")
        request.response_status = reply[0]
        return reply


def _parse(handler: BaseHTTPRequestHandler, body: bytes) -> RecordedRequest:
    split = urlsplit(handler.path)
    headers = {k.lower(): v for k, v in handler.headers.items()}
    request = RecordedRequest(
        method=handler.command,
        path=split.path,
        query=parse_qs(split.query, keep_blank_values=True),
        headers=headers,
        body=body,
    )
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" and body:
        try:
            request.json = json.loads(body)
        except ValueError:
            request.json = None
    elif content_type == "application/x-www-form-urlencoded":
        multi = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        request.form_multi = multi
        request.form = {k: v[0] for k, v in multi.items()}
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
            request.basic_auth = (user, password)
        except ValueError:
            request.basic_auth = None
    elif scheme.lower() == "bearer":
        request.bearer_token = value
    return request


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    """Serialize ``payload`` as a JSON response."""
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return status, all_headers, json.dumps(payload).encode("utf-8")

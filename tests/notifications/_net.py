"""Small network helpers for the adapter tests."""

from __future__ import annotations

import socket


def closed_port_url() -> str:
    """A 127.0.0.1 URL nobody listens on, to provoke a connection error."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"

"""HTTP to a model server within limits that a slow, broken or hostile server can't get past.

httpx's timeouts are per read, so a server that sends one byte a second keeps a request alive for ever;
here every request has a total deadline (`deadline`), checked on each read and write of the connection
itself, headers included. The answer's body is read as it is decoded (gzip included) and given up once
it passes a byte cap, so a small compressed body can't inflate into gigabytes. Credentials written into a
URL (`http://user:password@host/v1`) authenticate the requests but never appear in what is shown or
recorded (`shown_url`, `scrub_credentials`).
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import unquote, urlsplit, urlunsplit

import httpcore2
import httpx2

_limits = threading.local()  # the deadline of the request this thread is making (time.monotonic())
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


class AnswerTooLarge(Exception):
    """The server's answer grew past the byte cap (after decompression)."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"its answer passed {cap // 1024 ** 2} MB")
        self.cap = cap


def shown_url(url: str) -> str:
    """A URL as it may be shown, logged or recorded: without `user:password@`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub_credentials(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def url_credentials(url: str) -> httpx2.BasicAuth | None:
    """The `user:password@` of a URL as HTTP basic auth (None when it has none). Requests go to the
    `shown_url` with this as their auth, so httpx's own request log never sees the password either."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if "@" not in parts.netloc:
        return None
    return httpx2.BasicAuth(unquote(parts.username or ""), unquote(parts.password or ""))


def scrub_credentials(text: str) -> str:
    """Any `scheme://user:password@` in a message, with the credentials taken out."""
    return _USERINFO.sub("", text)


def _remaining(timeout: float | None, error: type[Exception]) -> float | None:
    deadline = getattr(_limits, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the request's total time ran out")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore2.NetworkStream):
    """A connection whose reads and writes stop at the deadline of the request using it."""

    def __init__(self, inner: httpcore2.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _remaining(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _remaining(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore2.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore2.NetworkBackend):
    def __init__(self, inner: httpcore2.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore2.NetworkStream:
        return _DeadlineStream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore2.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def limited_client(timeout: httpx2.Timeout, headers: dict[str, str], connections: int,
                   auth: httpx2.BasicAuth | None = None) -> httpx2.Client:
    """An httpx client whose connections honour `deadline` (with `auth` on every request, if given)."""
    transport = httpx2.HTTPTransport(limits=httpx2.Limits(max_connections=connections,
                                                          max_keepalive_connections=connections))
    pool = transport._pool  # httpx exposes no way to pass httpcore's network backend; tests catch a drift
    pool._network_backend = _DeadlineBackend(pool._network_backend)
    return httpx2.Client(timeout=timeout, headers=headers, transport=transport, auth=auth)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Requests this thread makes inside the block must be done within `seconds` in all (`httpx2.ReadTimeout`
    or `WriteTimeout` after that, like any other timeout)."""
    saved = getattr(_limits, "deadline", None)
    _limits.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        _limits.deadline = saved


def read_capped(client: httpx2.Client, method: str, url: str, seconds: float, max_bytes: int,
                **kwargs: Any) -> tuple[int, bytes]:
    """One request within `seconds` in all whose decoded body may hold at most `max_bytes`: (status, body).

    Raises httpx's errors as they are (timeouts included) and `AnswerTooLarge`."""
    with deadline(seconds):
        with client.stream(method, url, **kwargs) as resp:
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and "content-encoding" not in resp.headers and int(declared) > max_bytes:
                raise AnswerTooLarge(max_bytes)
            body = bytearray()
            for chunk in resp.iter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise AnswerTooLarge(max_bytes)
            return resp.status_code, bytes(body)

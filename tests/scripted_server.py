"""An OpenAI-compatible model server on loopback that answers as a test scripts it: well, slowly (one
byte at a time, headers included), with a gzip bomb, with a huge answer, or with a hostile model name.
It records what it was sent (paths, Authorization headers), so tests can check what reached the wire."""

from __future__ import annotations

import json
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GOOD_ANSWER = '<think>Step 1: the part looks whole.</think><answer>{"anomaly": false, "defects": []}</answer>'


def completion(text: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}],
                       "usage": {"completion_tokens": 12}}).encode()


class ScriptedServer:
    """`with ScriptedServer(mode) as server:` … `server.url` is the API base (…/v1).

    Modes for POST /v1/chat/completions: "ok"; "trickle" (the whole response, status line and headers
    included, one byte every `trickle_s`); "gzip_bomb" (a small gzip body that inflates to `inflated` bytes);
    "huge" (a plain answer of `huge_bytes`); "long_text" (a well-formed answer whose text is `huge_bytes` long).
    """

    def __init__(self, mode: str = "ok", model: str = "served-model", trickle_s: float = 0.2,
                 inflated: int = 300 * 1024 ** 2, huge_bytes: int = 50 * 1024 ** 2, answer: str = GOOD_ANSWER) -> None:
        self.mode, self.model, self.trickle_s, self.answer = mode, model, trickle_s, answer
        self.inflated, self.huge_bytes = inflated, huge_bytes
        self.authorizations: list[str | None] = []
        self.paths: list[str] = []
        self.bytes_sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server._record(self)
                server._send(self, json.dumps({"object": "list", "data": [{"id": server.model}]}).encode())

            def do_POST(self) -> None:
                server._record(self)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server._answer(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "ScriptedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _record(self, h: BaseHTTPRequestHandler) -> None:
        self.paths.append(h.path)
        self.authorizations.append(h.headers.get("Authorization"))

    def _send(self, h: BaseHTTPRequestHandler, body: bytes, headers: dict[str, str] | None = None) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            h.wfile.write(body)
            self.bytes_sent += len(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _bomb(self) -> bytes:
        """A gzip body of an answer `inflated` bytes long, made piece by piece (about 1000 to 1)."""
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
        parts = [packer.compress(b'{"choices": [{"message": {"content": "')]
        piece = b"A" * 1024 ** 2
        for _ in range(self.inflated // len(piece)):
            parts.append(packer.compress(piece))
        parts.append(packer.compress(b'"}}]}'))
        parts.append(packer.flush())
        return b"".join(parts)

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        if self.mode == "ok":
            return self._send(h, completion(self.answer))
        if self.mode == "trickle":
            body = completion(GOOD_ANSWER)
            raw = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                   ).encode() + body
            h.close_connection = True
            for i in range(len(raw)):
                try:
                    h.wfile.write(raw[i:i + 1])
                    h.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return
                self.bytes_sent += 1
                time.sleep(self.trickle_s)
            return
        if self.mode == "gzip_bomb":
            return self._send(h, self._bomb(), {"Content-Encoding": "gzip"})
        if self.mode == "huge":
            return self._send(h, completion("x" * self.huge_bytes))
        if self.mode == "long_text":
            return self._send(h, completion("<think>" + "y" * self.huge_bytes + "</think>"
                                            + GOOD_ANSWER.split("</think>")[1]))
        raise AssertionError(self.mode)

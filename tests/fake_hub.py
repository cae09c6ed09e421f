"""A stand-in for the Hugging Face hub on loopback, for the real huggingface_hub client (`HF_ENDPOINT`).

It serves real model folders with the parts of the hub API the client uses for a download:
`GET /api/models/{repo}[/revision/{rev}]` (repo info with the commit sha),
`GET /api/models/{repo}/tree/{rev}` (the file list, LFS sha256 for weights) and
`GET|HEAD /{repo}/resolve/{rev}/{file}` (the bytes, with `Range` for resumes, `ETag`,
`X-Repo-Commit`, `Content-Length`). Unknown repos answer 404 `RepoNotFound`, gated ones 403
`GatedRepo`, as the hub does. It can throttle, cut a connection once mid-file, and it records
every request, so tests can watch cancels, resumes and dropped connections happen.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

PIECE = 64 * 1024


@dataclass
class FakeRepo:
    folder: Path
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    gated: bool = False
    listed_sizes: dict[str, int] = field(default_factory=dict)  # sizes to announce instead of the real ones
    extra_listing: list[dict] = field(default_factory=list)  # raw entries added to the file list as they are

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.is_file())


@dataclass
class Request:
    method: str
    path: str
    range: str | None


class FakeHub:
    """`with FakeHub({"org/name": FakeRepo(folder)}) as hub:` … `hub.url` is the endpoint."""

    def __init__(self, repos: dict[str, FakeRepo], throttle_s: float = 0.0) -> None:
        self.repos = repos
        self.throttle_s = throttle_s  # pause after each 64 KiB piece of a file body
        self.slow_after: tuple[int, float] | None = None  # (body bytes, pause): a longer pause past that many bytes
        self.drop_once: dict[str, int] = {}  # file name -> cut the connection after this many body bytes, once
        self.gone_after_drop = False  # after that cut the hub is gone: no more connections are taken
        self.requests: list[Request] = []
        self.bytes_served = 0
        self._lock = threading.Lock()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:
                hub._handle(self, head=True)

            def do_GET(self) -> None:
                hub._handle(self, head=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FakeHub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def resolve_requests(self, name: str) -> list[Request]:
        return [r for r in self.requests if "/resolve/" in r.path and r.path.endswith("/" + name)]

    # --- answering --------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(urlparse(h.path).path)
        with self._lock:
            self.requests.append(Request(h.command, path, h.headers.get("Range")))
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        if m:
            return self._repo_info(h, m.group(1))
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/.*)?", path)
        if m:
            return self._tree(h, m.group(1))
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m:
            return self._file(h, m.group(1), m.group(3), head)
        self._error(h, 404, "EntryNotFound", "no such endpoint")

    def _repo(self, h: BaseHTTPRequestHandler, repo_id: str) -> FakeRepo | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            self._error(h, 404, "RepoNotFound", "Repository not found")
        elif repo.gated:
            self._error(h, 403, "GatedRepo", "Access to this model is restricted")
            return None
        return repo

    def _error(self, h: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("X-Error-Code", code)
        h.send_header("X-Error-Message", message)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def _json(self, h: BaseHTTPRequestHandler, data) -> None:
        body = json.dumps(data).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _repo_info(self, h: BaseHTTPRequestHandler, repo_id: str) -> None:
        repo = self._repo(h, repo_id)
        if repo is not None:
            self._json(h, {"id": repo_id, "modelId": repo_id, "sha": repo.commit, "private": False,
                           "gated": False, "siblings": [{"rfilename": p.name} for p in repo.files()]})

    def _tree(self, h: BaseHTTPRequestHandler, repo_id: str) -> None:
        repo = self._repo(h, repo_id)
        if repo is None:
            return
        entries = []
        for p in repo.files():
            data = p.read_bytes()
            size = repo.listed_sizes.get(p.name, len(data))
            entry = {"type": "file", "path": p.name, "size": size,
                     "oid": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
            if p.suffix == ".safetensors":
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": size, "pointerSize": 134}
            entries.append(entry)
        self._json(h, entries + list(repo.extra_listing))

    def _file(self, h: BaseHTTPRequestHandler, repo_id: str, name: str, head: bool) -> None:
        repo = self._repo(h, repo_id)
        if repo is None:
            return
        path = repo.folder / name
        if not path.is_file():
            return self._error(h, 404, "EntryNotFound", f"{name} not found")
        data = path.read_bytes()
        start, status = 0, 200
        wanted = h.headers.get("Range")
        if wanted:
            m = re.fullmatch(r"bytes=(\d+)-", wanted.strip())
            start = int(m.group(1)) if m else 0
            status = 206
        body = data[start:]
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("ETag", '"' + hashlib.sha256(data).hexdigest() + '"')
        h.send_header("X-Repo-Commit", repo.commit)
        if status == 206:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.end_headers()
        if head:
            return
        cut = self.drop_once.pop(name, None)
        sent = 0
        for i in range(0, len(body), PIECE):
            piece = body[i:i + PIECE]
            if cut is not None and sent + len(piece) > cut:
                h.wfile.write(piece[: max(0, cut - sent)])
                h.wfile.flush()
                with self._lock:
                    self.bytes_served += max(0, cut - sent)
                h.close_connection = True
                h.connection.shutdown(2)  # the connection drops mid-file
                if self.gone_after_drop:
                    self._server.socket.close()  # nothing listens any more: later connections are refused
                return
            try:
                h.wfile.write(piece)
            except (BrokenPipeError, ConnectionResetError):  # the client went away (a Cancel)
                return
            sent += len(piece)
            with self._lock:
                self.bytes_served += len(piece)
            slow = self.slow_after
            if slow is not None and sent > slow[0]:
                time.sleep(slow[1])  # a test's Cancel lands here, however busy the machine
            elif self.throttle_s:
                time.sleep(self.throttle_s)

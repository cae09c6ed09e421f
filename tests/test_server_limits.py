"""A model server is input from the network: a server that trickles its answer a byte at a time, sends a
gzip bomb or a 50 MB answer can neither hold a request past `--server-timeout` nor fill the memory or the
store; credentials in the server URL authenticate but never reach a message, a log, a model version or the
store. Each case runs against a real HTTP server on loopback (`scripted_server.py`)."""

from __future__ import annotations

import base64
import json
import logging
import sqlite3

import pytest
from PIL import Image

from lriad_desktop.core.backends.pipeline import BackendUnavailable, InspectionRequest, inspect_requests
from lriad_desktop.core.backends.server import ServerBackend, ServerConfig, answer_byte_cap, normalise_url
from lriad_desktop.core.backends.server_http import scrub_credentials, shown_url
from lriad_desktop.core.store.review_store import ReviewStore
from scripted_server import ScriptedServer


@pytest.fixture()
def part_image(tmp_path):
    path = tmp_path / "part.png"
    Image.new("RGB", (64, 48), (120, 120, 120)).save(path)
    return path


def _inspect_one(url: str, image, **config) -> object:
    backend = ServerBackend(ServerConfig(url, retries=0, in_flight=1, **config))
    try:
        results = list(inspect_requests(backend, [InspectionRequest(str(image), "washer")]))
    finally:
        backend.close()
    assert len(results) == 1
    return results[0]


def test_a_server_trickling_a_byte_at_a_time_times_out_at_the_server_timeout(part_image):
    # each byte comes well within the 2 s read timeout: only a deadline for the whole request stops it
    with ScriptedServer("trickle", trickle_s=0.25) as server:
        result = _inspect_one(server.url, part_image, timeout_s=2)
    assert not result.ok and result.error == f"The model server at {server.url} did not answer within 2 s"


def test_a_gzip_bomb_is_given_up_at_the_cap_not_inflated(part_image):
    with ScriptedServer("gzip_bomb", inflated=300 * 1024 ** 2) as server:
        result = _inspect_one(server.url, part_image)
    assert not result.ok and "sent too long an answer (its answer passed 2 MB" in result.error


def test_a_50_mb_answer_is_refused_and_stores_nothing(part_image):
    assert answer_byte_cap(256) < 50 * 1024 ** 2
    with ScriptedServer("huge", huge_bytes=50 * 1024 ** 2) as server:
        result = _inspect_one(server.url, part_image)
    assert not result.ok and "too long an answer" in result.error and "\n" not in result.error


def test_an_answer_longer_than_its_tokens_can_be_is_cut_before_the_store(part_image, tmp_path):
    with ScriptedServer("long_text", huge_bytes=1024 ** 2) as server:  # under the body cap, far over the tokens
        result = _inspect_one(server.url, part_image, max_new_tokens=256)
    assert result.ok and result.finding.verdict.value == "normal"  # the answer at the end still reads
    assert len(result.finding.raw_text) < 20_000 and "characters cut" in result.finding.raw_text
    store = ReviewStore.open(tmp_path / "reviews.db")
    image = store.add_image(part_image, "washer")
    store.record_inspection(image.id, result.finding)
    store.close()
    with sqlite3.connect(tmp_path / "reviews.db") as db:
        (row_size,) = db.execute("SELECT length(finding_json) FROM inspections").fetchone()
    assert row_size < 64_000  # the raw text and the reasoning read from it, not a megabyte


def test_credentials_in_the_url_authenticate_but_are_never_shown_or_recorded(part_image, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    with ScriptedServer("ok") as server:
        url = f"http://inspector:s3cret-pw@127.0.0.1:{server.port}/v1"
        backend = ServerBackend(ServerConfig(url, retries=0))
        results = list(inspect_requests(backend, [InspectionRequest(str(part_image), "washer")]))
        backend.close()
        from lriad_desktop.cli.commands import main

        rc = main(["inspect", str(part_image), "--server", url, "--json"])
        out = capsys.readouterr()
        sent = list(server.authorizations)
    finding = results[0].finding
    assert results[0].ok and finding.model_version == f"served-model @ 127.0.0.1:{server.port}"
    assert backend.base_url == server.url and backend.host == f"127.0.0.1:{server.port}" and backend.device
    assert "s3cret" not in backend.device
    basic = "Basic " + base64.b64encode(b"inspector:s3cret-pw").decode()
    assert sent and all(a == basic for a in sent)  # the credentials did their job on the wire
    store = ReviewStore.open(tmp_path / "reviews.db")
    store.record_inspection(store.add_image(part_image, "washer").id, finding)
    store.close()
    with sqlite3.connect(tmp_path / "reviews.db") as db:
        rows = json.dumps(db.execute("SELECT * FROM inspections").fetchall())
    assert rc == 0 and json.loads(out.out.splitlines()[0])["verdict"] == "normal"
    for text in (rows, out.out, out.err, caplog.text, finding.to_json()):
        assert "s3cret" not in text and "inspector:" not in text


def test_credentials_are_kept_out_of_error_messages(part_image):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(BackendUnavailable) as err:
        ServerBackend(ServerConfig(f"http://user:pw-123@127.0.0.1:{closed}/v1")).load()
    assert "pw-123" not in str(err.value) and f"http://127.0.0.1:{closed}/v1" in str(err.value)
    assert shown_url("https://a:b@host:8000/v1") == "https://host:8000/v1"
    assert scrub_credentials("see http://a:b@h/v1 and https://c@d/") == "see http://h/v1 and https://d/"


@pytest.mark.parametrize("url", ["http://[::1", "http://host:port/v1", "http://user:pw@[::1"])
def test_an_unreadable_server_url_is_one_message(url):
    with pytest.raises(BackendUnavailable, match="is not a usable model server URL") as err:
        normalise_url(url)
    assert "pw" not in str(err.value)


def test_loading_an_adapter_on_a_trickling_or_flooding_server_ends_in_one_sentence():
    """Issue 33's deadline and cap hold for model versions on a server too (`server_adapters`), not only for
    inspection: the load request is given up at its total time or its answer's cap, with the commands that would
    serve the adapter instead."""
    from lriad_desktop.core.backends.server_adapters import activate_adapter_on_server

    # the whole answer a byte every 0.25 s would take minutes; only the total deadline ends it
    with ScriptedServer("trickle", trickle_s=0.25) as server:
        result = activate_adapter_on_server(ServerConfig(server.url), "line3-v2", "/srv/a", load_s=2)
        assert server.bytes_sent < 100  # given up a few bytes in, not read to the end
    assert not result.ok and result.message == "The model server did not load line3-v2 within 2 s"
    assert result.commands and "--lora-modules line3-v2=/srv/a" in result.commands[0]
    with ScriptedServer("gzip_bomb", inflated=300 * 1024 ** 2) as server:
        result = activate_adapter_on_server(ServerConfig(server.url), "line3-v2", "/srv/a")
    assert not result.ok and result.message.startswith("The model server sent too long an answer to loading "
                                                       "line3-v2 (its answer passed 1 MB")
    assert "\n" not in result.message

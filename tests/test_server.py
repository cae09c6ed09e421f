"""Inspecting through a real model server: `transformers serve` on 127.0.0.1 with the bundled model.

The server's findings equal in-process ones; a server killed mid-batch gives error marks, not a hang; a
wrong URL is one line within seconds; the API key never reaches a log; adapters a server can't load at
run time get the command that serves them.
"""

import json
import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import REPO, start_model_server
from lriad_desktop.core.inspection.coordinates import CoordinateFrame, model_input_size, read_model_geometry
from lriad_desktop.core.backends.engine import Inspector
from lriad_desktop.core.backends.model_input import ModelInputResizer
from lriad_desktop.core.paths import bundled_model_dir
from lriad_desktop.core.backends.pipeline import BackendUnavailable, InspectionRequest, inspect_requests
from lriad_desktop.core.inspection.prompting import guess_object_name
from lriad_desktop.core.backends.server import (ServerBackend, ServerConfig, check_server, completion_text,
                                       declared_geometry, normalise_url, openai_messages, parse_logprobs)
from lriad_desktop.core.backends.server_adapters import activate_adapter_on_server, lora_name

SAMPLES = REPO / "resources" / "samples"


def sample_requests():
    return [InspectionRequest(str(p), guess_object_name(p)) for p in sorted(SAMPLES.glob("*.jpg"))]


@pytest.fixture(scope="module")
def local_findings():
    """In-process findings on the bundled samples (the reference the server must match)."""
    inspector = Inspector(bundled_model_dir(), device="cpu", grammar=False)  # transformers serve takes no grammar
    results = list(inspect_requests(inspector, sample_requests(), batch_size=8))
    inspector.close()
    assert all(r.ok for r in results)
    return {Path(r.request.path).name: r.finding for r in results}


def assert_same_findings(local, served):
    assert len(local) == len(served) == 6
    for name, mine in local.items():
        theirs = served[name]
        assert theirs.verdict == mine.verdict, name
        assert theirs.labels == mine.labels, name
        for a, b in zip(mine.defects, theirs.defects):
            assert (a.box is None) == (b.box is None), name
            if a.box is not None:
                assert max(abs(x - y) for x, y in zip(a.box.as_list(None), b.box.as_list(None))) <= 2.0, name


def test_server_findings_equal_in_process(model_server, local_findings):
    backend = ServerBackend(ServerConfig(model_server.url, in_flight=4))
    results = list(inspect_requests(backend, sample_requests(), batch_size=2))
    assert backend.min_batch == 4 and all(r.ok for r in results), [r.error for r in results]
    served = {Path(r.request.path).name: r.finding for r in results}
    assert_same_findings(local_findings, served)
    anomalous = [f for f in served.values() if f.anomalous]
    assert anomalous and all(f.reasoning for f in served.values())  # reasoning_content came back as steps
    f = served["washer_scratch.jpg"]
    assert f.model_version == f"lriad-tiny @ 127.0.0.1:{model_server.port}"
    assert f.raw_text.startswith("<think>") and f.timings["in_flight"] == 4 and f.timings["new_tokens"] > 0
    assert f.logprobs == ()  # transformers serve ignores logprobs; vLLM, SGLang and Ollama send them
    # so no anomaly score: null in the JSON, "—" on the screen
    assert all(x.anomaly_score is None and x.score_source == "" for x in served.values())
    assert f.to_dict()["anomaly_score"] is None
    assert backend.geometry == read_model_geometry(bundled_model_dir())  # its folder: the served model's id
    assert "processor settings" in backend.geometry_source
    backend.close()


def test_cli_inspect_through_the_server_gives_the_in_process_verdicts(model_server, local_findings):
    res = subprocess.run([sys.executable, "-m", "lriad_desktop", "inspect", str(SAMPLES), "--server", model_server.url,
                          "--json"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    served = {Path(d["image_path"]).name: d for d in map(json.loads, res.stdout.splitlines())}
    assert {n: d["verdict"] for n, d in served.items()} == {n: f.verdict.value for n, f in local_findings.items()}


def test_wrong_urls_fail_fast_with_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        for url, says in ((f"http://127.0.0.1:{closed}/v1", "can't be reached (connection refused)"),
                          ("http://no-such-host.invalid/v1", "can't be reached"),
                          (f"http://127.0.0.1:{silent.getsockname()[1]}", "did not answer within 4 s")):
            start = time.monotonic()
            with pytest.raises(BackendUnavailable, match=r"The model server at http://.+/v1 ") as err:
                ServerBackend(ServerConfig(url)).load()
            assert time.monotonic() - start < 5.0, url  # the bound: a wrong URL never hangs the caller
            assert says in str(err.value) and "\n" not in str(err.value)
    finally:
        silent.close()
    with pytest.raises(BackendUnavailable, match="not an http"):
        ServerBackend(ServerConfig("ftp://host/v1"))
    Image.new("RGB", (40, 40)).save(tmp_path / "a.png")
    res = subprocess.run([sys.executable, "-m", "lriad_desktop", "inspect", str(tmp_path / "a.png"), "--server",
                          f"http://127.0.0.1:{closed}/v1"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"error: The model server at http://127.0.0.1:{closed}/v1 can't be reached (connection refused)"]


def test_a_server_killed_mid_batch_marks_errors_and_goes_on(tmp_path, monkeypatch):
    from lriad_desktop.core.backends import server as server_module

    server = start_model_server(bundled_model_dir(), tmp_path / "serve.log")
    backend = ServerBackend(ServerConfig(server.url, in_flight=2, backoff_s=0.1, grammar=False))
    requests = sample_requests() * 2
    results, done, answered = [], threading.Event(), threading.Event()
    read = server_module.read_capped

    def read_and_tell(client, method, url, *args, **kwargs):
        status, body = read(client, method, url, *args, **kwargs)
        if method == "POST" and status == 200:
            answered.set()  # a whole answer is in the client's hands: now the server may die
        return status, body

    monkeypatch.setattr(server_module, "read_capped", read_and_tell)

    def run():
        try:
            results.extend(inspect_requests(backend, requests, batch_size=8))
        finally:
            done.set()

    def kill_after_first_answer():
        answered.wait(120)  # the server's log says 200 before the body has reached the client: not that
        server.stop()

    killer = threading.Thread(target=kill_after_first_answer)
    worker = threading.Thread(target=run, daemon=True)
    try:
        killer.start()
        worker.start()
        assert done.wait(180), "the pipeline hung after the server died"
    finally:
        killer.join(30)
        server.stop()
    assert len(results) == 12
    ok = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    # with two requests in flight, the one that answered first need not be the first in the queue
    assert answered.is_set() and ok and failed
    for r in failed:
        assert r.error.startswith(f"The model server at {server.url} ") and "\n" not in r.error
        assert "can't be reached" in r.error or "dropped the connection" in r.error
    assert any("connection refused" in r.error for r in failed)  # after the kill: down, said plainly
    backend.close()


def test_check_server_and_a_model_it_does_not_serve(model_server):
    check = check_server(ServerConfig(model_server.url))
    assert check.ok and check.message.startswith("✓ ") and "boxes in model pixels" in check.message
    assert "can't hold answers to the format" in check.message  # it ignores response_format, refuses grammars
    other = check_server(ServerConfig(model_server.url, model="qwen2.5vl:7b"))
    assert not other.ok and "has no model 'qwen2.5vl:7b' (it serves: " in other.message
    down = check_server(ServerConfig("http://127.0.0.1:9/v1"))
    assert not down.ok and "connection refused" in down.message


def test_the_api_key_never_reaches_a_log(model_server, caplog):
    caplog.set_level(logging.DEBUG)
    config = ServerConfig(model_server.url, api_key="sk-very-secret-123")
    backend = ServerBackend(config)
    results = list(inspect_requests(backend, sample_requests()[:1]))
    backend.close()
    assert results[0].ok  # transformers serve takes any key
    assert "sk-very-secret" not in caplog.text and "sk-very-secret" not in repr(config)


def test_activating_an_adapter_on_a_server_that_cannot_load_one(model_server):
    config = ServerConfig(model_server.url)
    result = activate_adapter_on_server(config, lora_name("line3 v2"), "/srv/adapters/line3-v2")
    assert not result.ok and result.name == "line3-v2"
    assert "does not load adapters at run time: restart it with the adapter" in result.message
    assert result.commands[0].endswith("--enable-lora --lora-modules line3-v2=/srv/adapters/line3-v2")
    assert "sglang.launch_server" in result.commands[1] and "--lora-paths line3-v2=" in result.commands[1]
    served = check_server(config).models[0]
    assert activate_adapter_on_server(config, served, "/x").ok  # already served under that name


def test_images_leave_at_the_model_input_size():
    geometry = read_model_geometry(bundled_model_dir())
    exact = ModelInputResizer(geometry, bundled_model_dir())
    plain = ModelInputResizer(geometry)
    image = Image.open(SAMPLES / "metal_hole.jpg").convert("RGB")
    once = exact.resize(image)
    assert once.size == model_input_size(image.size, geometry) == plain.resize(image).size
    assert exact.exact and not plain.exact
    assert exact.resize(once).tobytes() == once.tobytes()  # nothing left for the server to resize


def test_what_the_client_reads_and_sends():
    assert normalise_url("gpu-server:8000") == "http://gpu-server:8000/v1"
    assert normalise_url("http://host:11434/v1/") == "http://host:11434/v1"
    with pytest.raises(BackendUnavailable, match="No model server URL"):
        normalise_url("  ")
    assert completion_text({"content": "<answer>{}</answer>", "reasoning_content": "Step 1: x"}) == \
        "<think>Step 1: x</think><answer>{}</answer>"
    assert completion_text({"content": "<think>a</think><answer>{}</answer>", "reasoning": "a"}) == \
        "<think>a</think><answer>{}</answer>"
    assert completion_text({"content": [{"type": "text", "text": "hi"}], "reasoning": None}) == "hi"
    choice = {"logprobs": {"content": [
        {"token": "true", "logprob": -0.1, "top_logprobs": [{"token": "true", "logprob": -0.1},
                                                            {"token": "false", "logprob": -2.4}]}]}}
    (tok,) = parse_logprobs(choice)
    assert (tok.token, tok.logprob, tok.top) == ("true", -0.1, (("true", -0.1), ("false", -2.4)))
    assert parse_logprobs({"logprobs": None}) == () and parse_logprobs({"logprobs": {"content": [{"x": 1}]}}) == ()
    msgs = openai_messages([{"role": "system", "content": [{"type": "text", "text": "S"}]},
                            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "T"}]}],
                           ["data:image/png;base64,AAAA"])
    assert msgs[0] == {"role": "system", "content": "S"}
    assert msgs[1]["content"][0] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    g = declared_geometry("qwen3_vl")
    assert g.frame is CoordinateFrame.NORM1000 and g.patch_size == 16
    g = declared_geometry("qwen2_5_vl", "norm1000", 401408)
    assert g.frame is CoordinateFrame.NORM1000 and g.patch_size == 14 and g.max_pixels == 401408
    assert lora_name("  v2 (line 3)/x ") == "v2-line-3-x" and lora_name("///") == "adapter"


def _logprob_entry(token, logprob, top):
    """One `logprobs.content` entry as vLLM writes it (token, logprob, bytes, top_logprobs)."""
    def one(t, lp):
        return {"token": t, "logprob": lp, "bytes": list(t.encode())}
    return {**one(token, logprob), "top_logprobs": [one(t, lp) for t, lp in top]}


def test_a_served_answer_with_logprobs_gets_its_score_from_them():
    """The shape of a vLLM chat completion with `logprobs` and `top_logprobs` 5 (a Qwen tokenizer's split:
    `":` then ` true`), read by the client's own functions."""
    import math

    from lriad_desktop.core.backends.server import served_finding

    def answer(verdict_top):
        pieces = ['<answer>{"', "anomaly", '":', verdict_top[0][0], ', "', "defects", '":', ' [{"', "label",
                  '":', ' "', "scratch", '",', ' "', "bbox", "_", "2", "d", '":', " [", "10", ",", " 20", ",",
                  " 30", ",", " 40", "]}]}", "</answer>"]
        content = []
        for i, piece in enumerate(pieces):
            top = verdict_top if i == 3 else [(piece, -0.05)]
            content.append(_logprob_entry(piece, top[0][1], top))
        text = "".join(pieces)
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text,
                                                      "reasoning_content": "Step 1: a scratch."},
                             "logprobs": {"content": content}, "finish_reason": "stop"}],
                "usage": {"completion_tokens": len(pieces)}}

    geometry = read_model_geometry(bundled_model_dir())
    tops = [(" true", -0.3), (" false", -1.5), (" True", -3.0), ("false", -4.0), ('"', -5.0)]
    data = answer(tops)
    choice = data["choices"][0]
    f = served_finding(completion_text(choice["message"]), parse_logprobs(choice), (200, 100), geometry)
    p_true, p_false = math.exp(-0.3) + math.exp(-3.0), math.exp(-1.5) + math.exp(-4.0)
    assert f.anomalous and f.score_source == "server_logprobs" and f.reasoning == ("a scratch.",)
    assert f.anomaly_score == pytest.approx(p_true / (p_true + p_false))
    assert f.defects[0].label == "scratch" and f.defects[0].confidence == pytest.approx(math.exp(-0.05))
    # top 5 without `false`: it has at most the least likely listed token's probability
    tops = [(" true", -0.01), (" yes", -6.0), ('"', -6.5), (" 1", -7.0), (" True", -8.0)]
    choice = answer(tops)["choices"][0]
    f = served_finding(completion_text(choice["message"]), parse_logprobs(choice), (200, 100), geometry)
    p_true = math.exp(-0.01) + math.exp(-8.0)
    assert f.anomaly_score == pytest.approx(p_true / (p_true + math.exp(-8.0)))
    # a server that sends no logprobs: no score
    assert served_finding(choice["message"]["content"], (), (200, 100), geometry).anomaly_score is None

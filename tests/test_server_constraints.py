"""The server path sends the answer grammar to a server that takes one, found out once per server, and says so
when it can't: a real HTTP server on loopback that honours one constraint field, as vLLM, SGLang or Ollama do."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from lriad_desktop.core.inspection.coordinates import model_input_size
from lriad_desktop.core.inspection.finding import Verdict
from lriad_desktop.core.backends.server import ServerBackend, ServerConfig, check_server
from lriad_desktop.core.backends.server_constraints import PROBE_WORD

ANSWER = {"anomaly": True, "defects": [{"label": "hole", "bbox_2d": [10, 20, 60, 80]}]}


class ConstrainedServer:
    """An OpenAI-style chat server that takes a constraint in one field (`form`), refuses the others (422, like
    transformers serve), and records every request body."""

    def __init__(self, form: str) -> None:
        self.form = form
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, data: dict) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._send(200, {"data": [{"id": "served-vlm"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                status, content = outer.reply(body)
                self._send(status, {"choices": [{"message": {"role": "assistant", "content": content}}],
                                    "usage": {"completion_tokens": 5}} if status == 200 else {"detail": content})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def constraint(self, body: dict) -> str:
        """The constraint text the request carries in this server's field ("" none)."""
        if self.form == "structured_outputs":
            return (body.get("structured_outputs") or {}).get("grammar", "")
        if self.form == "json_schema":
            return json.dumps((body.get("response_format") or {}).get("json_schema", {}))
        return body.get(self.form, "")

    def reply(self, body: dict) -> tuple[int, str]:
        unknown = {"structured_outputs", "guided_grammar", "ebnf"} - {self.form}
        if unknown & set(body):
            return 422, f"Unexpected fields in the request: {sorted(unknown & set(body))}"
        held = self.constraint(body)
        if PROBE_WORD in held:
            return 200, json.dumps({"probe": PROBE_WORD}) if self.form == "json_schema" else PROBE_WORD
        if self.form == "json_schema":
            return 200, json.dumps(ANSWER)  # the answer part only; the reasoning would be in its own field
        return 200, "<think>Step 1: a hole.</think><answer>" + json.dumps(ANSWER) + "</answer>"

    def inspections(self) -> list[dict]:
        return [b for b in self.bodies if PROBE_WORD not in json.dumps(b)]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(request):
    server = ConstrainedServer(request.param)
    yield server
    server.stop()


@pytest.mark.parametrize("served", ["structured_outputs", "ebnf", "json_schema"], indirect=True)
def test_the_request_carries_the_grammar_the_server_takes(served):
    backend = ServerBackend(ServerConfig(served.url)).load()
    assert backend.constraint == served.form
    image = Image.new("RGB", (640, 480), (90, 90, 90))
    finding = backend.inspect_batch([image], ["washer"])[0]
    assert finding.verdict is Verdict.ANOMALOUS and [d.label for d in finding.defects] == ["hole"]
    (sent,) = served.inspections()
    held = served.constraint(sent)
    width, height = model_input_size(image.size, backend.geometry)  # Qwen2.5-VL: pixels of the model input
    if served.form == "json_schema":
        schema = sent["response_format"]["json_schema"]["schema"]
        box = schema["properties"]["defects"]["items"]["properties"]["bbox_2d"]["prefixItems"]
        assert [b["maximum"] for b in box] == [width, height, width, height]
    else:
        assert "root ::=" in held and '\\"bbox_2d\\": [' in held and f'"{width}"' in held and f'"{height}"' in held
    assert sent["max_tokens"] >= 256
    probes = len(served.bodies) - 1
    ServerBackend(ServerConfig(served.url)).load().close()  # remembered: not asked again
    assert len(served.bodies) - 1 == probes
    check = check_server(ServerConfig(served.url))
    assert "answers held to the format" in check.message
    backend.close()


@pytest.mark.parametrize("served", ["none"], indirect=True)
def test_a_server_without_constraints_is_said_and_the_parser_stays(served):
    check = check_server(ServerConfig(served.url))
    assert check.ok and "can't hold answers to the format" in check.message
    backend = ServerBackend(ServerConfig(served.url)).load()
    assert backend.constraint == ""
    finding = backend.inspect_batch([Image.new("RGB", (200, 100))], ["washer"])[0]
    assert finding.verdict is Verdict.ANOMALOUS  # read by the parser, as before
    assert all(not ({"structured_outputs", "ebnf", "guided_grammar", "response_format"} & set(b))
               for b in served.inspections())
    backend.close()


@pytest.mark.parametrize("served", ["structured_outputs"], indirect=True)
def test_turned_off_sends_no_grammar(served):
    backend = ServerBackend(ServerConfig(served.url, grammar=False)).load()
    backend.inspect_batch([Image.new("RGB", (200, 100))], ["washer"])
    assert backend.constraint == "" and served.bodies and "structured_outputs" not in served.bodies[-1]
    assert all(PROBE_WORD not in json.dumps(b) for b in served.bodies)  # not even asked
    backend.close()

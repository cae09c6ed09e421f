"""Holding a model server's answers to the grammar (`core.inspection.grammar`), where the server takes a constraint.

Servers take it in different request fields; which one a server honours is found out once per server (and model)
with a tiny probe and remembered for the session:

- `structured_outputs.grammar` — vLLM's structured outputs (an EBNF grammar; xgrammar inside);
- `guided_grammar` — the same on older vLLM;
- `ebnf` — SGLang;
- `response_format` with a JSON schema of the answer object — Ollama, LM Studio and others that take only a
  schema (their reasoning goes to its own field; the answer then comes as bare JSON, which the parser reads).

The probe asks for a constraint whose only answer is a fixed word: a server that honours the field answers that
word; one that refuses the field (422, 400) or ignores it (`transformers serve` ignores `response_format` with a
warning and refuses the other fields) answers something else, and inspection keeps today's parser path.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx2

from lriad_desktop.core.inspection.grammar import AnswerGrammar

PROBE_WORD = "lriad-probe-ok"
PROBE_TOKENS = 16
FORMS = ("structured_outputs", "guided_grammar", "ebnf", "json_schema")
FORM_NAMES = {
    "structured_outputs": "vLLM structured outputs (grammar)",
    "guided_grammar": "vLLM guided grammar",
    "ebnf": "SGLang EBNF grammar",
    "json_schema": "a JSON schema for the answer (response_format)",
}
NOT_TAKEN = ("this server can't hold answers to the format (it takes no grammar or JSON schema): an answer it "
             "can't read stays possible")

_found: dict[tuple[str, str], str] = {}  # (server url, model) -> the form it honours, "" for none
_lock = threading.Lock()


def with_constraint(body: dict[str, Any], form: str, grammar: AnswerGrammar) -> dict[str, Any]:
    """The chat request `body` holding its answer to `grammar` in the server's `form` ("" leaves it as it is)."""
    if form in ("structured_outputs", "guided_grammar", "ebnf"):
        ebnf = grammar.answer_ebnf() if grammar.thinking_template else grammar.full_ebnf()
        field = {"structured_outputs": {"grammar": ebnf}, "guided_grammar": ebnf, "ebnf": ebnf}[form]
        return {**body, form: field}
    if form == "json_schema":
        schema = {"name": "lriad_answer", "strict": True, "schema": grammar.answer_json_schema()}
        return {**body, "response_format": {"type": "json_schema", "json_schema": schema}}
    return body


def _probe_body(form: str, model: str) -> dict[str, Any]:
    body = {"model": model, "temperature": 0, "max_tokens": PROBE_TOKENS,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Say ok."}]}]}
    ebnf = f'root ::= "{PROBE_WORD}"'
    if form == "structured_outputs":
        return {**body, "structured_outputs": {"grammar": ebnf}}
    if form in ("guided_grammar", "ebnf"):
        return {**body, form: ebnf}
    schema = {"type": "object", "properties": {"probe": {"type": "string", "enum": [PROBE_WORD]}},
              "required": ["probe"], "additionalProperties": False}
    return {**body, "response_format": {"type": "json_schema",
                                        "json_schema": {"name": "lriad_probe", "strict": True, "schema": schema}}}


def _honoured(form: str, text: str) -> bool:
    if form != "json_schema":
        return text.strip() == PROBE_WORD
    try:
        return json.loads(text).get("probe") == PROBE_WORD
    except (ValueError, AttributeError):
        return False


def probe_constraint(client: httpx2.Client, chat_url: str, model: str) -> str:
    """The constraint form the server at `chat_url` honours for `model` ("" for none), asked once per server and
    model and remembered. Never raises: a server that can't be asked is taken to honour none."""
    key = (chat_url, model)
    with _lock:
        if key in _found:
            return _found[key]
    found = ""
    for form in FORMS:
        try:
            resp = client.post(chat_url, json=_probe_body(form, model))
            if resp.status_code != 200:
                continue
            message = resp.json()["choices"][0]["message"]
            text = message.get("content") or ""
        except (httpx2.HTTPError, ValueError, KeyError, IndexError, TypeError, AttributeError):
            continue
        if isinstance(text, str) and _honoured(form, text):
            found = form
            break
    with _lock:
        _found[key] = found
    return found


def forget(chat_url: str, model: str) -> None:
    """Ask the server again next time (a server restarted with other options)."""
    with _lock:
        _found.pop((chat_url, model), None)


def describe(form: str) -> str:
    """What the connection test says about the answers' format."""
    return f"answers held to the format ({FORM_NAMES[form]})" if form else NOT_TAKEN

"""Model versions on a model server: each adapter version is a LoRA name the server serves beside the base.

vLLM serves LoRA adapters named at start (`--enable-lora --lora-modules NAME=PATH`) and, when started with
`VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`, loads more at run time (`POST /v1/load_lora_adapter`); SGLang the
same with `--enable-lora --lora-paths NAME=PATH` and its `POST /load_lora_adapter`. Activating a version
asks the server to load it where it allows that, else says which command serves it. Each request has a total
deadline and a cap on its answer (`server_http`), as inspection's have: a trickling or flooding server ends in one
sentence.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import httpx2

from lriad_desktop.core.backends.pipeline import BackendUnavailable
from lriad_desktop.core.backends.server import (CONNECT_TIMEOUT_S, MAX_LISTING_BYTES, ServerConfig, normalise_url,
                                                reason)
from lriad_desktop.core.backends.server_http import (AnswerTooLarge, limited_client, read_capped, shown_url,
                                                     url_credentials)

LIST_S = 10.0  # the whole of GET /models here
LOAD_S = 120.0  # the whole of one load request (a server loads the adapter's weights before it answers)
MAX_LOAD_ANSWER_BYTES = 1024 ** 2


def lora_name(version_name: str) -> str:
    """The name a model version's adapter has on a server (letters, digits, `.`, `_`, `-`)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", version_name.strip()).strip("-.")
    return name or "adapter"


def serve_commands(base_model: str, name: str, adapter_path: str) -> tuple[str, ...]:
    """The commands that start vLLM and SGLang serving `base_model` with this adapter as `name`."""
    return (f"vllm serve {base_model} --enable-lora --lora-modules {name}={adapter_path}",
            f"python -m sglang.launch_server --model-path {base_model} --enable-lora --lora-paths "
            f"{name}={adapter_path}")


@dataclass(frozen=True)
class AdapterOnServer:
    """Whether the server now serves a version's adapter under `name`; else the commands that would."""

    ok: bool
    name: str
    message: str
    commands: tuple[str, ...] = ()


def _served(config: ServerConfig) -> tuple[list[str], str]:
    """The model ids the server lists, and its base model (the one entry without a parent, if any)."""
    full_url = normalise_url(config.url)
    base_url = shown_url(full_url)
    with limited_client(httpx2.Timeout(LIST_S, connect=CONNECT_TIMEOUT_S), _headers(config), 1,
                        url_credentials(full_url)) as client:
        try:
            _status, body = read_capped(client, "GET", f"{base_url}/models", LIST_S, MAX_LISTING_BYTES)
            entries = [m for m in json.loads(body)["data"] if isinstance(m, dict) and m.get("id")]
        except httpx2.TimeoutException:
            raise BackendUnavailable(f"The model server at {base_url} did not answer within {LIST_S:.0f} s") from None
        except httpx2.HTTPError as err:
            raise BackendUnavailable(f"The model server at {base_url} can't be reached ({reason(err)})") from None
        except (ValueError, KeyError, TypeError, AnswerTooLarge):
            raise BackendUnavailable(f"{base_url} is not an OpenAI-compatible model server") from None
    ids = [str(m["id"]) for m in entries]
    bases = [str(m["id"]) for m in entries if not m.get("parent")]
    return ids, (config.model if config.model in bases else bases[0] if len(bases) == 1 else "BASE_MODEL")


def _headers(config: ServerConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}


def activate_adapter_on_server(config: ServerConfig, name: str, adapter_path: str,
                               load_s: float = LOAD_S) -> AdapterOnServer:
    """Make the server serve the adapter at `adapter_path` (a path the server sees) as `name`.

    Already listed: nothing to do. Else vLLM's `/v1/load_lora_adapter`, then SGLang's `/load_lora_adapter`
    (each within `load_s` in all); a server that has neither (or refuses) gets the commands to restart it with the
    adapter.
    """
    try:
        ids, base = _served(config)
    except BackendUnavailable as err:
        return AdapterOnServer(False, name, str(err))
    if name in ids:
        return AdapterOnServer(True, name, f"The model server already serves {name}")
    commands = serve_commands(base, name, adapter_path)
    full_url = normalise_url(config.url)
    root = shown_url(full_url)
    server_root = root[:-3] if root.endswith("/v1") else root
    body = {"lora_name": name, "lora_path": adapter_path}
    refusal = ""
    with limited_client(httpx2.Timeout(load_s, connect=CONNECT_TIMEOUT_S), _headers(config), 1,
                        url_credentials(full_url)) as client:
        for url in (f"{root}/load_lora_adapter", f"{server_root}/load_lora_adapter"):
            try:
                status, answer = read_capped(client, "POST", url, load_s, MAX_LOAD_ANSWER_BYTES, json=body)
            except httpx2.TimeoutException:
                return AdapterOnServer(False, name, f"The model server did not load {name} within {load_s:.0f} s",
                                       commands)
            except httpx2.HTTPError as err:
                return AdapterOnServer(False, name, f"The model server can't be reached ({reason(err)})", commands)
            except AnswerTooLarge as err:
                return AdapterOnServer(False, name, f"The model server sent too long an answer to loading {name} "
                                                    f"({err})", commands)
            text = answer.decode("utf-8", "replace")
            if status == 200 or (status == 400 and "already" in text.lower()):
                return AdapterOnServer(True, name, f"The model server loaded {name}")
            if status not in (404, 405):
                refusal = f"the model server refused to load {name} ({status}: {text.strip()[:160]})"
                break
    why = refusal or "this model server does not load adapters at run time"
    return AdapterOnServer(False, name, f"{why[0].upper()}{why[1:]}: restart it with the adapter, e.g. "
                                        f"{commands[0]}", commands)

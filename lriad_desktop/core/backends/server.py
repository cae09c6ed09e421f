"""Inspecting through a model server over the OpenAI chat API (vLLM, SGLang, Ollama, LM Studio, transformers
serve): an `InspectionBackend` that sends each image, already resized to the model input, as a PNG data URI.

Requests go out N at a time (the server batches them), at temperature 0, asking for `logprobs` with the
top 5 alternatives: where the server reports them, the finding's anomaly score is read from them
(`core.inspection.confidence`, the same rule as in-process); where it does not (transformers serve, LM Studio), the
score is null, shown as "—". A server that is down, too slow or answers an error marks
that image *error* with one clear message and the batch goes on; once the server is found unreachable,
further images get one quick attempt each instead of the full retries, so nothing waits for long.
The API key is sent as a bearer token and never logged or shown.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

import httpx2
from PIL import Image

from lriad_desktop.core.inspection.confidence import SOURCE_SERVER_LOGPROBS, score_tokens
from lriad_desktop.core.inspection.coordinates import (DEFAULT_FRAMES, SIDECAR, CoordinateFrame, ModelGeometry,
                                            read_model_geometry)
from lriad_desktop.core.backends.engine import DEFAULT_MAX_NEW_TOKENS, batch_views, finding_from_completion, finding_from_view
from lriad_desktop.core.inspection.families import FAMILIES
from lriad_desktop.core.inspection.finding import Finding, TokenLogprob
from lriad_desktop.core.inspection.grammar import grammar_for
from lriad_desktop.core.backends.model_input import ModelInputResizer, has_processor_settings, png_data_uri
from lriad_desktop.core.backends.pipeline import Answer, BackendUnavailable, ImageError
from lriad_desktop.core.inspection.references import PromptImages, ReferenceImage
from lriad_desktop.core.backends.server_constraints import describe, probe_constraint, with_constraint
from lriad_desktop.core.inspection.coordinates import pixel_budget_problem
from lriad_desktop.core.backends.server_http import AnswerTooLarge
from lriad_desktop.core.backends.server_http import limited_client
from lriad_desktop.core.backends.server_http import read_capped
from lriad_desktop.core.backends.server_http import scrub_credentials
from lriad_desktop.core.backends.server_http import shown_url
from lriad_desktop.core.backends.server_http import url_credentials

log = logging.getLogger(__name__)
API_KEY_ENV = "LRIAD_SERVER_API_KEY"
TOP_LOGPROBS = 5
CONNECT_TIMEOUT_S = 3.0
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
LIST_TIMEOUT_S = 4.0  # the whole of GET /models
MAX_LISTING_BYTES = 8 * 1024 ** 2
ANSWER_BYTES_BASE = 1024 ** 2  # an answer's body may hold this plus ANSWER_BYTES_PER_TOKEN per new token
ANSWER_BYTES_PER_TOKEN = 4096  # a token with its top-5 log-probabilities is a few hundred bytes of JSON
ANSWER_CHARS_PER_TOKEN = 64  # no tokenizer's token decodes to more; a longer answer is not the model's


def answer_byte_cap(max_new_tokens: int) -> int:
    """The most bytes (decoded) a chat completion of `max_new_tokens` tokens may take."""
    return ANSWER_BYTES_BASE + ANSWER_BYTES_PER_TOKEN * max(1, max_new_tokens)


def capped_answer(text: str, max_new_tokens: int) -> str:
    """The answer as kept: a text longer than `max_new_tokens` tokens can be keeps its first and last parts
    (the parser reads the end for the answer), so a server can't make a huge store row."""
    cap = max(4096, ANSWER_CHARS_PER_TOKEN * max(1, max_new_tokens))
    if len(text) <= cap:
        return text
    half = cap // 2
    return f"{text[:half]} … [{len(text) - 2 * half} characters cut] … {text[-half:]}"


@dataclass(frozen=True)
class ServerConfig:
    """Where the model server is and how to talk to it.

    `processor_dir` is a local copy of the served model's folder (or just its processor configs and
    `lriad.json`): the geometry and the exact resize come from it. Without one, a served model whose name
    is a local folder is used the same way; else `family`, `frame` and `max_pixels` declare the geometry.
    """

    url: str
    model: str = ""  # the served model (or LoRA adapter) name; "" = the server's only model
    api_key: str = field(default="", repr=False)
    in_flight: int = 4
    timeout_s: float = 60.0
    retries: int = 2
    backoff_s: float = 0.5
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    processor_dir: str = ""
    family: str = "qwen2_5_vl"
    frame: str = "auto"  # auto (the family's) | model_pixels | norm1000
    max_pixels: int = 0  # 0 = the family's default budget
    grammar: bool = True  # send the answer grammar where the server takes one (`core.backends.server_constraints`)

    @classmethod
    def from_settings(cls, settings: Any) -> "ServerConfig":
        """The server the app's settings describe (the API key from the settings, else `LRIAD_SERVER_API_KEY`)."""
        return cls(url=settings.server_url, model=settings.server_model,
                   api_key=settings.server_api_key or os.environ.get(API_KEY_ENV, ""),
                   in_flight=settings.server_in_flight, timeout_s=float(settings.server_timeout_s),
                   max_new_tokens=settings.max_new_tokens, processor_dir=settings.server_processor_dir,
                   family=settings.server_family, frame=settings.server_frame,
                   max_pixels=settings.server_max_pixels,
                   grammar=bool(getattr(settings, "constrained_answers", True)))


def normalise_url(url: str) -> str:
    """The API base URL (`http://host:8000` → `http://host:8000/v1`); raises `BackendUnavailable` if unusable."""
    text = (url or "").strip().rstrip("/")
    if not text:
        raise BackendUnavailable("No model server URL is set (e.g. http://gpu-server:8000/v1)")
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - reading it checks it ("host:abc" raises)
    except ValueError as err:
        raise BackendUnavailable(f"'{shown_url(url.strip())}' is not a usable model server URL ({err})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendUnavailable(f"'{shown_url(url.strip())}' is not an http:// or https:// model server URL")
    return text if parts.path else text + "/v1"


def declared_geometry(family: str, frame: str = "auto", max_pixels: int = 0) -> ModelGeometry:
    """The geometry a user declares for a served model with no local copy: its family, frame and pixel budget."""
    default = ModelGeometry()
    known = FAMILIES.get(family)  # the family table: frame, patch and default pixel budget
    chosen = DEFAULT_FRAMES.get(family, CoordinateFrame.NORM1000) if frame in ("", "auto") else CoordinateFrame(frame)
    return ModelGeometry(frame=chosen, patch_size=known.patch_size if known else default.patch_size,
                         merge_size=known.merge_size if known else default.merge_size, min_pixels=default.min_pixels,
                         max_pixels=max_pixels or (known.default_max_pixels if known else default.max_pixels))


def openai_messages(messages: Sequence[dict[str, Any]], image_uris: Sequence[str]) -> list[dict[str, Any]]:
    """Chat messages for a processor's template turned into OpenAI ones, the i-th image part given the i-th URI."""
    uris = iter(image_uris)
    out = []
    for message in messages:
        parts = []
        for part in message["content"]:
            if part.get("type") == "image":
                parts.append({"type": "image_url", "image_url": {"url": next(uris)}})
            else:
                parts.append({"type": "text", "text": part["text"]})
        text_only = all(p["type"] == "text" for p in parts)
        out.append({"role": message["role"],
                    "content": "".join(p["text"] for p in parts) if text_only else parts})
    return out


def completion_text(message: dict[str, Any]) -> str:
    """The model's whole answer from a chat message: the reasoning a server split off (`reasoning_content`,
    `reasoning`) put back inside `<think>`, then the content."""
    content = message.get("content") or ""
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
    if isinstance(reasoning, str) and reasoning.strip() and "<think>" not in content:
        return f"<think>{reasoning.strip()}</think>{content}"
    return str(content)


def parse_logprobs(choice: dict[str, Any]) -> tuple[TokenLogprob, ...]:
    """The tokens' log-probabilities of an OpenAI chat choice (`logprobs.content`), () when not reported."""
    content = (choice.get("logprobs") or {}).get("content") if isinstance(choice.get("logprobs"), dict) else None
    if not isinstance(content, list):
        return ()
    out = []
    for item in content:
        try:
            top = tuple((str(t["token"]), float(t["logprob"])) for t in item.get("top_logprobs") or ())
            out.append(TokenLogprob(str(item["token"]), float(item["logprob"]), top))
        except (KeyError, TypeError, ValueError):
            return ()  # a malformed list is no confidence at all, not half of one
    return tuple(out)


def served_finding(text: str, logprobs: Sequence[TokenLogprob], view: PromptImages | tuple[int, int],
                   geometry: ModelGeometry, **details: Any) -> Finding:
    """A served answer as a finding: its anomaly score read from the reported log-probabilities (top-k, so
    ranked), or no score when the server reported none. `view` is what the model was shown (or, for an
    image alone, its size)."""
    scores = score_tokens(logprobs, ranked=True) if logprobs else None
    if isinstance(view, tuple):
        return finding_from_completion(text, view, geometry, scores, SOURCE_SERVER_LOGPROBS,
                                       logprobs=tuple(logprobs), **details)
    return finding_from_view(text, view, geometry, scores, SOURCE_SERVER_LOGPROBS, logprobs=tuple(logprobs), **details)


def reason(err: Exception) -> str:
    """An exception as a short lower-case reason for a message ("connection refused")."""
    text = scrub_credentials(re.sub(r"^\[Errno -?\d+\]\s*", "", str(err) or type(err).__name__))
    return text[0].lower() + text[1:] if text else type(err).__name__


def _server_detail(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:200]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err)[:200]
        return str(err or data.get("detail") or data.get("message") or data)[:200]
    return str(data)[:200]


class _Failure(Exception):
    """One request that failed; `retry` when trying again may help, `unreachable` when the server seems down."""

    def __init__(self, message: str, retry: bool = False, unreachable: bool = False) -> None:
        super().__init__(message)
        self.retry = retry
        self.unreachable = unreachable


@dataclass(frozen=True)
class _Reply:
    text: str
    logprobs: tuple[TokenLogprob, ...]
    completion_tokens: int
    seconds: float


class ServerBackend:
    """An `InspectionBackend` on an OpenAI-compatible model server."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        full_url = normalise_url(config.url)
        self._auth = url_credentials(full_url)  # a user:password@ in the URL authenticates, and goes no further
        self.base_url = shown_url(full_url)  # what requests, messages, logs and model versions use
        self.host = urlsplit(self.base_url).netloc
        self.model_name = config.model
        self.geometry_source = ""
        self.device: str | None = None
        self.load_seconds: float | None = None
        self._geometry: ModelGeometry | None = None
        self._resizer: ModelInputResizer | None = None
        self._client: httpx2.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._unreachable = ""  # set once retries found the server down; cleared by the next answer
        self._tower: Any = None  # the anomaly map's tower, from a local copy of the model folder
        self._lock = threading.Lock()
        self.constraint = ""  # the request field the server holds answers to the grammar by ("" none: the parser)

    # --- the protocol ----------------------------------------------------------------
    @property
    def geometry(self) -> ModelGeometry:
        return self._geometry if self._geometry is not None else declared_geometry(
            self.config.family, self.config.frame, self.config.max_pixels)

    @property
    def model_version(self) -> str:
        name = self.model_name or "?"
        short = Path(name).name if ("/" in name or os.sep in name) else name
        return f"{short} @ {self.host}"

    @property
    def min_batch(self) -> int:
        return max(1, self.config.in_flight)

    @property
    def loaded(self) -> bool:
        return self._client is not None

    def load(self) -> "ServerBackend":
        """Reach the server, pick the model, settle the geometry (idempotent); raises `BackendUnavailable`."""
        with self._lock:
            if self._client is not None:
                return self
            start = time.perf_counter()
            timeout = httpx2.Timeout(self.config.timeout_s, connect=CONNECT_TIMEOUT_S)
            headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
            n = max(1, self.config.in_flight)
            client = limited_client(timeout, headers, n + 2, self._auth)
            try:
                self.model_name = self._pick_model(client)
                self._geometry, self._resizer, self.geometry_source = self._settle_geometry()
                self.constraint = (probe_constraint(client, self._url("chat/completions"), self.model_name)
                                   if self.config.grammar else "")
            except BaseException:
                client.close()
                raise
            self._client = client
            self._pool = ThreadPoolExecutor(n, thread_name_prefix="lriad-server")
            self.device = f"{self.model_version.split(' @ ')[0]} at {self.host}"
            self.load_seconds = time.perf_counter() - start
            log.info("model server %s, model %s, geometry from %s", self.base_url, self.model_name,
                     self.geometry_source)
            return self

    def close(self) -> None:
        """Close the connections and the request threads (a later `load` reconnects)."""
        with self._lock:
            pool, client = self._pool, self._client
            self._pool = self._client = None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if client is not None:
            client.close()

    def inspect_batch(self, images: Sequence[Image.Image], object_names: Sequence[str | None] | None = None,
                      image_paths: Sequence[str] | None = None,
                      references: Sequence[Sequence[ReferenceImage]] | None = None,
                      hints: Sequence[str] | None = None) -> list[Answer]:
        """Send the images N at a time; one finding, or an `ImageError` with the reason, per image, in order
        (`hints[i]`: the anomaly map's region hint for image i, "" for none).

        An image with golden samples goes as several `image_url` parts (each resized to the model input), or
        as one side-by-side composite, as the model's `lriad.json` says.
        """
        self.load()
        n = len(images)
        if n == 0:
            return []
        names = list(object_names) if object_names is not None else [None] * n
        paths = list(image_paths) if image_paths is not None else [""] * n
        t0 = time.perf_counter()
        assert self._resizer is not None and self._pool is not None
        views = batch_views(images, references, self.geometry)
        said = list(hints) if hints is not None else [""] * n
        bodies = [self._constrained(self._body(view.messages(names[i], said[i]),
                                               [png_data_uri(self._resizer.resize(im)) for im in view.images]), view)
                  for i, view in enumerate(views)]
        t1 = time.perf_counter()
        futures = [self._pool.submit(self._ask, body) for body in bodies]
        replies = [f.result() for f in futures]
        wall = time.perf_counter() - t0
        answers: list[Answer] = []
        for i, reply in enumerate(replies):
            if isinstance(reply, ImageError):
                answers.append(reply)
                continue
            timings = {"preprocess_ms": (t1 - t0) * 1000 / n, "request_ms": reply.seconds * 1000,
                       "total_ms": wall * 1000 / n, "new_tokens": float(reply.completion_tokens),
                       "batch_size": float(n), "in_flight": float(self.min_batch)}
            answers.append(served_finding(reply.text, reply.logprobs, views[i], self.geometry,
                                          model_version=self.model_version, image_path=paths[i],
                                          object_name=names[i] or "", timings=timings))
        return answers

    def vision_tower(self) -> Any:
        """The anomaly map's tower from a local copy of the served model's folder (the processor folder, or the
        served folder when this computer sees it), loaded once; `FeatureError` with the reason when there is
        none: the server itself can't give image features."""
        from lriad_desktop.core.backends.model_files import ModelFolderError
        from lriad_desktop.core.backends.vision_features import FeatureError, VisionTower

        if self._tower is None:
            folder = self.config.processor_dir.strip() or self.model_name
            path = Path(folder).expanduser() if folder else None
            if path is None or not (path / "config.json").is_file() or not any(path.glob("*.safetensors")):
                raise FeatureError("a model server gives no image features: the anomaly map needs a local copy of the "
                                   "served model's folder with its weights (Settings → Model server → Local copy "
                                   "of the model)")
            try:
                self._tower = VisionTower.load(path)
            except ModelFolderError as err:
                raise FeatureError(f"the local copy of the served model can't be used: {err}") from None
        return self._tower

    # --- talking to the server ------------------------------------------------------------
    def _url(self, endpoint: str) -> str:
        return f"{self.base_url}/{endpoint}"

    def _pick_model(self, client: httpx2.Client) -> str:
        try:
            status, body = read_capped(client, "GET", self._url("models"), LIST_TIMEOUT_S, MAX_LISTING_BYTES,
                                       timeout=httpx2.Timeout(LIST_TIMEOUT_S, connect=CONNECT_TIMEOUT_S))
        except httpx2.ConnectTimeout:
            raise BackendUnavailable(f"The model server at {self.base_url} can't be reached (no answer within "
                                     f"{CONNECT_TIMEOUT_S:.0f} s)") from None
        except httpx2.TimeoutException:
            raise BackendUnavailable(f"The model server at {self.base_url} did not answer within "
                                     f"{LIST_TIMEOUT_S:.0f} s") from None
        except httpx2.HTTPError as err:
            raise BackendUnavailable(f"The model server at {self.base_url} can't be reached ({reason(err)})") from None
        except AnswerTooLarge as err:
            raise BackendUnavailable(f"{self.base_url} is not an OpenAI-compatible model server "
                                     f"(its model list {err})") from None
        if status in (401, 403):
            raise BackendUnavailable(f"The model server at {self.base_url} refused the API key ({status})")
        if status != 200:
            raise BackendUnavailable(f"{self.base_url} is not an OpenAI-compatible model server "
                                     f"(GET /models answered {status})")
        try:
            entries = [m for m in json.loads(body)["data"] if isinstance(m, dict) and m.get("id")]
        except (ValueError, KeyError, TypeError):
            raise BackendUnavailable(f"{self.base_url} is not an OpenAI-compatible model server "
                                     "(its model list can't be read)") from None
        ids = [str(m["id"]) for m in entries]
        listing = ", ".join(ids[:8]) + (" …" if len(ids) > 8 else "")
        if self.config.model:
            if self.config.model not in ids:
                raise BackendUnavailable(f"The model server at {self.base_url} has no model '{self.config.model}'"
                                         f" (it serves: {listing or 'nothing'})")
            return self.config.model
        bases = [str(m["id"]) for m in entries if not m.get("parent")]  # vLLM lists LoRA adapters with a parent
        if len(bases) == 1:
            return bases[0]
        if not ids:
            raise BackendUnavailable(f"The model server at {self.base_url} serves no model")
        raise BackendUnavailable(f"The model server at {self.base_url} serves {len(ids)} models ({listing}): "
                                 "choose one (--server-model, or Server model in the settings)")

    def _settle_geometry(self) -> tuple[ModelGeometry, ModelInputResizer, str]:
        declared = declared_geometry(self.config.family, self.config.frame, self.config.max_pixels)
        problem = pixel_budget_problem(declared.min_pixels, declared.max_pixels)
        if problem:
            raise BackendUnavailable(f"The served model's pixel budget can't be used: {problem}")
        folder = self.config.processor_dir.strip()
        if folder and not has_processor_settings(folder):
            raise BackendUnavailable(f"{folder} has no image processor settings (preprocessor_config.json): "
                                     "choose the served model's folder, or leave it empty and declare the geometry")
        if not folder and has_processor_settings(self.model_name):
            folder = self.model_name  # transformers serve and vLLM name a model served from a folder by its path
        if not folder:
            return declared, ModelInputResizer(declared), "the declared family, frame and pixel budget"
        path = Path(folder).expanduser()
        try:
            geometry = read_model_geometry(path)
        except (ValueError, OSError) as err:
            raise BackendUnavailable(f"{path}: bad lriad.json or processor settings: {err}") from None
        if not (path / "config.json").is_file() and not (path / SIDECAR).is_file():
            geometry = ModelGeometry(declared.frame, geometry.patch_size, geometry.merge_size,
                                     geometry.min_pixels, geometry.max_pixels)
        return geometry, ModelInputResizer(geometry, path), f"the processor settings in {path}"

    def _body(self, messages: list[dict[str, Any]], uris: Sequence[str]) -> dict[str, Any]:
        return {"model": self.model_name, "messages": openai_messages(messages, uris),
                "temperature": 0, "max_tokens": self.config.max_new_tokens,
                "logprobs": True, "top_logprobs": TOP_LOGPROBS}

    def _constrained(self, body: dict[str, Any], view: Any) -> dict[str, Any]:
        """The request holding its answer to the grammar, where the server takes a constraint."""
        if not self.constraint:
            return body
        family = FAMILIES.get(self.config.family)
        thinking = bool(family and family.template_kwargs.get("enable_thinking"))
        grammar = grammar_for(self.geometry, view.answer_size, thinking_template=thinking,
                              max_new_tokens=self.config.max_new_tokens)
        return with_constraint({**body, "max_tokens": max(body["max_tokens"], grammar.token_budget())},
                               self.constraint, grammar)

    def _ask(self, body: dict[str, Any]) -> _Reply | ImageError:
        try:
            return self._post_with_retries(body)
        except _Failure as err:
            return ImageError(str(err))

    def _post_with_retries(self, body: dict[str, Any]) -> _Reply:
        attempts = 1 if self._unreachable else 1 + max(0, self.config.retries)
        failure = _Failure("no attempt was made")
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.config.backoff_s * 2 ** (attempt - 1))
            try:
                reply = self._post(body)
            except _Failure as err:
                failure = err
                if not err.retry:
                    break
                continue
            self._unreachable = ""
            return reply
        if failure.unreachable:
            self._unreachable = str(failure)
        raise failure

    def _post(self, body: dict[str, Any]) -> _Reply:
        client = self._client
        if client is None:
            raise _Failure("the connection to the model server was closed")
        start = time.perf_counter()
        cap = answer_byte_cap(self.config.max_new_tokens)
        try:
            status, answer = read_capped(client, "POST", self._url("chat/completions"), self.config.timeout_s, cap,
                                         json=body)
        except AnswerTooLarge as err:
            raise _Failure(f"The model server at {self.base_url} sent too long an answer ({err}; "
                           f"{self.config.max_new_tokens} new tokens never need that much)") from None
        except httpx2.ConnectTimeout:
            raise _Failure(f"The model server at {self.base_url} can't be reached (no answer within "
                           f"{CONNECT_TIMEOUT_S:.0f} s)", retry=True, unreachable=True) from None
        except httpx2.TimeoutException:
            raise _Failure(f"The model server at {self.base_url} did not answer within "
                           f"{self.config.timeout_s:.0f} s") from None
        except httpx2.ConnectError as err:
            raise _Failure(f"The model server at {self.base_url} can't be reached ({reason(err)})",
                           retry=True, unreachable=True) from None
        except (httpx2.TransportError, RuntimeError) as err:  # dropped mid-answer, or the client closed under it
            if self._client is None:
                raise _Failure("the connection to the model server was closed") from None
            raise _Failure(f"The model server at {self.base_url} dropped the connection ({reason(err)})",
                           retry=True, unreachable=True) from None
        if status != 200:
            message = f"The model server answered {status}: {_server_detail(answer)}"
            if status in (401, 403):
                message = f"The model server refused the API key ({status})"
            raise _Failure(message, retry=status in RETRY_STATUS)
        try:
            data = json.loads(answer)
            choice = data["choices"][0]
            text = completion_text(choice["message"])
            usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
            new_tokens = int(usage.get("completion_tokens") or 0)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError, OverflowError):
            raise _Failure("The model server's answer is not an OpenAI chat completion") from None
        limit = self.config.max_new_tokens
        return _Reply(capped_answer(text, limit), parse_logprobs(choice)[:limit], max(0, min(new_tokens, 10 * limit)),
                      time.perf_counter() - start)


@dataclass(frozen=True)
class ServerCheck:
    """What *Test connection* found: whether the server can be used, and a one-line message saying so."""

    ok: bool
    message: str
    models: tuple[str, ...] = ()


def check_server(config: ServerConfig) -> ServerCheck:
    """Reach the server, list its models and settle the geometry, without inspecting anything."""
    start = time.perf_counter()
    try:
        backend = ServerBackend(config).load()
    except BackendUnavailable as err:
        return ServerCheck(False, str(err))
    try:
        ms = (time.perf_counter() - start) * 1000
        frame = backend.geometry.frame.value.replace("_", " ")
        held = describe(backend.constraint) if config.grammar else "answers not held to the format (turned off)"
        return ServerCheck(True, f"✓ {backend.model_name} at {backend.host} ({ms:.0f} ms) · boxes in {frame}, "
                                 f"geometry from {backend.geometry_source} · {held}", (backend.model_name,))
    finally:
        backend.close()


"""The inspection engine: a local Qwen-VL folder (+ optional PEFT LoRA adapter) → findings.

torch and transformers are imported lazily, on the first load, so that importing
`lriad_desktop` stays fast. Loading is offline (no hub), from safetensors only, and
`trust_remote_code` stays off.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from lriad_desktop.core.inspection.confidence import SOURCE_VERDICT_TOKEN, TokenScores
from lriad_desktop.core.inspection.coordinates import ModelGeometry, processor_size, read_model_geometry, to_image_pixels
from lriad_desktop.core.devices import pick_device
from lriad_desktop.core.inspection.families import (FAMILIES, ModelFamily, prompt_opens_think, read_sidecar,
                                         unknown_family_message, with_opened_think)
from lriad_desktop.core.defect_kinds import DEFECT_LABELS
from lriad_desktop.core.inspection.finding import Defect, Finding, Verdict
from lriad_desktop.core.inspection.grammar import AnswerGrammar, grammar_for
from lriad_desktop.core.inspection.images import check_model_shape
from lriad_desktop.core.backends.model_files import (ModelFolderError, check_safetensors, check_weight_files, model_load_errors,
                                            one_line)
from lriad_desktop.core.inspection.parsing import parse_completion
from lriad_desktop.core.inspection.prompting import build_messages
from lriad_desktop.core.inspection.references import PromptImages, ReferenceImage, prompt_images
from lriad_desktop.core.inspection.side_by_side import query_finding

SUPPORTED_MODEL_TYPES = tuple(FAMILIES)  # the family table (core.inspection.families) is the one list
DEFAULT_MAX_NEW_TOKENS = 256


@dataclass(frozen=True)
class ModelFolderInfo:
    """What a valid model folder holds."""

    path: Path
    model_type: str
    weights: tuple[Path, ...]
    geometry: ModelGeometry
    family: ModelFamily | None = None  # None: a model type outside the table, tried with lriad.json's frame


def validate_model_folder(folder: str | os.PathLike) -> ModelFolderInfo:
    """Check that `folder` is a usable Qwen-VL model folder; raise `ModelFolderError` if not."""
    path = Path(folder).expanduser()
    if not path.exists():
        raise ModelFolderError(f"Model folder not found: {path}")
    if not path.is_dir():
        raise ModelFolderError(f"Not a folder: {path} (choose the folder that holds config.json)")
    cfg = path / "config.json"
    if not cfg.is_file():
        if (path / "adapter_config.json").is_file():
            raise ModelFolderError(f"{path} is a LoRA adapter, not a model: choose it as the adapter")
        raise ModelFolderError(f"{path} has no config.json: it is not a Hugging Face model folder")
    try:
        model_type = json.loads(cfg.read_text(encoding="utf-8")).get("model_type", "")
    except (OSError, json.JSONDecodeError) as err:
        raise ModelFolderError(f"{cfg} can't be read: {err}") from None
    family = FAMILIES.get(model_type)
    if family is None:
        try:
            declared = read_sidecar(path).coordinate_frame
        except (ValueError, OSError) as err:
            raise ModelFolderError(f"{path}: bad lriad.json: {err}") from None
        if declared is None:
            raise ModelFolderError(unknown_family_message(model_type, str(path)))
    weights = tuple(sorted(path.glob("*.safetensors")))
    if not weights:
        if any(path.glob("*.bin")) or any(path.glob("*.pt")):
            raise ModelFolderError(f"{path} has only pickle weights (.bin/.pt); only safetensors are loaded")
        raise ModelFolderError(f"{path} has no model weights (*.safetensors)")
    check_weight_files(path, weights)
    if not any((path / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json", "vocab.json")):
        raise ModelFolderError(f"{path} has no tokenizer files")
    if not any((path / n).is_file() for n in ("preprocessor_config.json", "processor_config.json")):
        raise ModelFolderError(f"{path} has no image processor settings (preprocessor_config.json)")
    try:
        geometry = read_model_geometry(path)
    except (ValueError, json.JSONDecodeError) as err:
        raise ModelFolderError(f"{path}: bad lriad.json or processor settings: {err}") from None
    return ModelFolderInfo(path=path, model_type=model_type, weights=weights, geometry=geometry, family=family)


def validate_adapter_folder(folder: str | os.PathLike) -> Path:
    """Check that `folder` is a PEFT adapter saved as safetensors, whole and with a readable config."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ModelFolderError(f"Adapter folder not found: {path}")
    config = path / "adapter_config.json"
    if not config.is_file():
        raise ModelFolderError(f"{path} has no adapter_config.json: it is not a PEFT adapter folder")
    if not (path / "adapter_model.safetensors").is_file():
        raise ModelFolderError(f"{path} has no adapter_model.safetensors")
    try:
        if not isinstance(json.loads(config.read_text(encoding="utf-8")), dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as err:
        raise ModelFolderError(f"{config} can't be read: {one_line(err)}") from None
    check_safetensors(path / "adapter_model.safetensors")
    return path


def finding_from_completion(text: str, image_size: tuple[int, int], geometry: ModelGeometry,
                            scores: TokenScores | None = None, score_source: str = "", **details: Any) -> Finding:
    """Turn one completion into a finding with boxes in original-image pixels. Never raises.

    `scores` (from the answer's token probabilities, `core.inspection.confidence`) give the anomaly score and the
    defects' confidences; a score whose verdict word is not the verdict the parser read is dropped."""
    parsed = parse_completion(text)
    if not parsed.ok:
        return Finding(Verdict.UNPARSED, (), parsed.steps, text, parse_error=parsed.error,
                       image_size=image_size, **details)
    scores = scores or TokenScores()
    confidences = scores.defect_confidences if len(scores.defect_confidences) == len(parsed.defects) else ()
    defects = []
    for i, d in enumerate(parsed.defects):
        box = to_image_pixels(d.box, image_size, geometry) if d.box is not None else None
        defects.append(Defect(d.label, box, confidences[i] if confidences else None))
    verdict = Verdict.ANOMALOUS if parsed.anomaly else Verdict.NORMAL
    probability = scores.verdict_probability if scores.says_anomalous is parsed.anomaly else None
    return Finding(verdict, tuple(defects), parsed.steps, text, image_size=image_size, anomaly_score=probability,
                   verdict_probability=probability, score_source=score_source if probability is not None else "",
                   **details)


def finding_from_view(text: str, view: PromptImages, geometry: ModelGeometry, scores: TokenScores | None = None,
                      score_source: str = "", **details: Any) -> Finding:
    """A completion for a prompt with golden samples as a finding on the query: boxes in the query's
    pixels (taken from the composite's right half for a side-by-side model), the references recorded;
    `scores` as in `finding_from_completion`."""
    finding = finding_from_completion(text, view.answer_size, geometry, scores, score_source,
                                      references=view.reference_paths, **details)
    return query_finding(finding, view.composite) if view.composite is not None else finding


def batch_views(images: Sequence[Image.Image], references: Sequence[Sequence[ReferenceImage]] | None,
                geometry: ModelGeometry) -> list[PromptImages]:
    """What the model is shown for each image of a batch (the image alone where it has no references)."""
    refs = list(references) if references is not None else [()] * len(images)
    if len(refs) != len(images):
        raise ValueError(f"{len(refs)} reference lists for {len(images)} images")
    return [prompt_images(im, r, geometry.references) for im, r in zip(images, refs)]


class Inspector:
    """Inspects images with a local model folder and an optional LoRA adapter.

    Construction only validates the folders; the model loads on `load()` or the first inspection.
    """

    def __init__(self, model_dir: str | os.PathLike, adapter_dir: str | os.PathLike | None = None,
                 device: str = "auto", max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, scores: bool = True,
                 grammar: bool = True) -> None:
        self.info = validate_model_folder(model_dir)
        self.scores = scores  # read the anomaly score from the generate call (False: the verdict only)
        # constrain every answer to the grammar (`core.inspection.grammar`); False: free generation, read by the parser
        self.grammar = grammar
        self.answer_labels: tuple[str, ...] = DEFECT_LABELS  # the labels the grammar offers (new ones stay sayable)
        self._compilers: Any = None  # the compiled grammars of the loaded tokenizer (`core.backends.grammar_generation`)
        self._watch: tuple[list[int], list[str]] | None = None
        self.adapter_dir = validate_adapter_folder(adapter_dir) if adapter_dir else None
        self.device_preference = device
        self.max_new_tokens = max_new_tokens
        self.device: str | None = None
        self.load_seconds: float | None = None
        self._model: Any = None
        self._processor: Any = None
        self.map_tower: Any = None  # the anomaly map's tower on these weights (`core.anomaly_map.banks`), dropped with them
        self.last_prompts: tuple[str, ...] = ()  # the prompt texts of the last generate call

    @property
    def geometry(self) -> ModelGeometry:
        return self.info.geometry

    @property
    def model_version(self) -> str:
        name = self.info.path.name
        return f"{name}+{self.adapter_dir.name}" if self.adapter_dir else name

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def min_batch(self) -> int:
        """One image keeps a local model busy (a batch is one `generate` call of any size)."""
        return 1

    def close(self) -> None:
        """Drop the weights (memory back before a training run loads its own); a later inspection reloads."""
        self._model = self._processor = self.map_tower = self._compilers = None

    def loaded_model(self) -> tuple[Any, Any]:
        """The loaded model (under a PEFT adapter, its base model with the adapter's layers in it) and processor,
        loading them first: what the anomaly map's tower reuses (`core.anomaly_map.banks.tower_of`), no second copy."""
        self.load()
        model = self._model.get_base_model() if hasattr(self._model, "get_base_model") else self._model
        return model, self._processor

    def load(self) -> "Inspector":
        """Load weights and processor (idempotent)."""
        if self._model is not None:
            return self
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        start = time.perf_counter()
        from transformers import AutoModelForImageTextToText, AutoProcessor
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        device, dtype = pick_device(self.device_preference)
        common = dict(local_files_only=True, trust_remote_code=False)
        with model_load_errors(f"Model in {self.info.path}"):
            processor = AutoProcessor.from_pretrained(self.info.path, **common)
        with model_load_errors(f"The chat template of {self.info.path}"):  # else every image fails, one by one
            processor.apply_chat_template(build_messages(None), add_generation_prompt=True, tokenize=False)
        with model_load_errors(f"Model in {self.info.path}"):
            model = AutoModelForImageTextToText.from_pretrained(
                self.info.path, dtype=dtype, use_safetensors=True, **common
            )
        if self.adapter_dir is not None:
            from peft import PeftModel

            with model_load_errors(f"Adapter {self.adapter_dir}"):
                model = PeftModel.from_pretrained(model, self.adapter_dir, is_trainable=False)
        with model_load_errors(f"Model in {self.info.path}"):
            model.to(device)
        model.eval()
        processor.tokenizer.padding_side = "left"
        processor.image_processor.size = processor_size(self.geometry)  # the pixel budget the frame assumes
        self._model, self._processor, self.device = model, processor, device
        self.load_seconds = time.perf_counter() - start
        return self

    def inspect(self, image: Image.Image, object_name: str | None = None, image_path: str = "",
                references: Sequence[ReferenceImage] = ()) -> Finding:
        """Inspect one RGB image (beside these golden samples, if any)."""
        return self.inspect_batch([image], [object_name], [image_path], [references])[0]

    def inspect_batch(self, images: Sequence[Image.Image], object_names: Sequence[str | None] | None = None,
                      image_paths: Sequence[str] | None = None,
                      references: Sequence[Sequence[ReferenceImage]] | None = None,
                      hints: Sequence[str] | None = None) -> list[Finding]:
        """Inspect several RGB images in one left-padded `generate` call (greedy).

        `references[i]`: the golden samples shown with image i (separate images or one composite, as the
        model folder's `lriad.json` says); the finding records which were used. `hints[i]`: the anomaly
        map's region hint sentence for image i ("" for none), closing its prompt.
        """
        import torch
        from transformers import LogitsProcessorList

        self.load()
        n = len(images)
        if n == 0:
            return []
        names = list(object_names) if object_names is not None else [None] * n
        paths = list(image_paths) if image_paths is not None else [""] * n
        for image, path in zip(images, paths):  # the pipeline checks first; this names the image to other callers
            check_model_shape(image.size, self.geometry, path or None)
        processor, model = self._processor, self._model
        t0 = time.perf_counter()
        views = batch_views(images, references, self.geometry)
        said = list(hints) if hints is not None else [""] * n
        template_kwargs = self.info.family.template_kwargs if self.info.family else {}
        texts = [processor.apply_chat_template(view.messages(name, hint), add_generation_prompt=True, tokenize=False,
                                               **template_kwargs) for view, name, hint in zip(views, names, said)]
        self.last_prompts = tuple(texts)  # what the model was asked, as the chat template wrote it
        shown = [im for view in views for im in view.images]  # the processor fills image entries in order
        inputs = processor(text=texts, images=shown, padding=True, return_tensors="pt").to(self.device)
        t1 = time.perf_counter()
        grammars = self.row_grammars(views, texts) if self.grammar else []
        constraint = self._compilers_for_model().processor(grammars) if grammars else None
        recorder = self._recorder()
        # the grammar first: the recorder reads the distribution the constrained choice is made from
        processors = [p for p in (constraint, recorder) if p is not None]
        extra = {"logits_processor": LogitsProcessorList(processors)} if processors else {}
        budget = max([self.max_new_tokens] + [g.token_budget() for g in grammars])  # every answer closes
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=budget, do_sample=False, **extra)
        t2 = time.perf_counter()
        new_tokens = out[:, inputs["input_ids"].shape[1]:]
        generated = processor.batch_decode(new_tokens, skip_special_tokens=True)
        token_scores = self._token_scores(recorder, new_tokens, generated)
        completions = generated
        if prompt_opens_think(texts[0]):  # a thinking template: the reasoning continues its open <think>
            completions = [with_opened_think(c) for c in completions]
        pad_id = processor.tokenizer.pad_token_id
        findings = []
        for i, text in enumerate(completions):
            n_new = int((new_tokens[i] != pad_id).sum()) if pad_id is not None else int(new_tokens.shape[1])
            timings = {
                "preprocess_ms": (t1 - t0) * 1000 / n,
                "generate_ms": (t2 - t1) * 1000 / n,
                "total_ms": (time.perf_counter() - t0) * 1000 / n,
                "new_tokens": float(n_new),
                "batch_size": float(n),
            }
            findings.append(finding_from_view(
                text, views[i], self.geometry, token_scores[i], SOURCE_VERDICT_TOKEN,
                model_version=self.model_version, image_path=paths[i], object_name=names[i] or "", timings=timings,
            ))
        return findings

    def row_grammars(self, views: Sequence[PromptImages], prompts: Sequence[str]) -> list[AnswerGrammar]:
        """The grammar each row of a batch is held to: the frame's bounds on the image its boxes refer to, the
        labels `answer_labels`, and a free think block where the chat template opened one; `max_new_tokens` caps the
        think block, and the answer after it always gets the tokens it needs to close."""
        return [grammar_for(self.geometry, view.answer_size, tuple(self.answer_labels), prompt_opens_think(prompt),
                            self.max_new_tokens) for view, prompt in zip(views, prompts)]

    def _compilers_for_model(self) -> Any:
        """The loaded tokenizer's grammar compilers (built once per model; grammars cached in them)."""
        if self._compilers is None:
            from lriad_desktop.core.backends.grammar_generation import GrammarCompilers

            tokenizer = self._processor.tokenizer
            eos = self._model.generation_config.eos_token_id
            stops = [eos] if isinstance(eos, int) else list(eos or [])
            if not stops and tokenizer.eos_token_id is not None:
                stops = [tokenizer.eos_token_id]
            vocab = self._model.get_output_embeddings().weight.shape[0]
            self._compilers = GrammarCompilers(tokenizer, vocab, stops)
        return self._compilers

    def _recorder(self) -> Any:
        """A fresh step recorder for one generate call (None when scores are off)."""
        if not self.scores:
            return None
        from lriad_desktop.core.backends.generation_scores import StepRecorder, verdict_watch

        if self._watch is None:  # once per model: which tokens could write `true` / `false`
            self._watch = verdict_watch(self._processor.tokenizer)
        return StepRecorder(self._watch[0], self.device)

    def _token_scores(self, recorder: Any, new_tokens: Any, generated: Sequence[str]) -> list[TokenScores | None]:
        """Per sequence, the scores read from the recorded steps (None for each when nothing was recorded)."""
        if recorder is None or not generated:
            return [None] * len(generated)
        from lriad_desktop.core.backends.generation_scores import scores_for_sequence, token_pieces

        tokenizer = self._processor.tokenizer
        eos = self._model.generation_config.eos_token_id
        stops = set(eos if isinstance(eos, list) else [] if eos is None else [eos]) | {tokenizer.pad_token_id}
        best, watched = recorder.collect()
        out: list[TokenScores | None] = []
        for row, text in enumerate(generated):
            ids = new_tokens[row].tolist()
            end = next((n + 1 for n, t in enumerate(ids) if t in stops), len(ids))  # through the first end token
            pieces = token_pieces(tokenizer, ids[:end], text)
            out.append(scores_for_sequence(pieces, row, best, watched, self._watch[1] if self._watch else []))
        return out

"""The anomaly score: the rule on token texts (hand-made tokens), and on the bundled model against a softmax
computed by hand from a separate forward pass."""

import math

import pytest
from PIL import Image

from lriad_desktop.core.inspection.confidence import (as_decided, decided_verdict, doubt, needs_review, probability_at,
                                           score_tokens, verdict_span, verdict_token)
from lriad_desktop.core.inspection.finding import Defect, Finding, TokenLogprob, Verdict
from lriad_desktop.core.paths import bundled_model_dir

LOG = math.log


def _tokens(*pieces, top=None):
    """Tokens of probability 0.9 each; `top` = {index: ((text, p), ...)} alternatives at that step."""
    top = top or {}
    return [TokenLogprob(p, LOG(0.9), tuple((t, LOG(q)) for t, q in top.get(i, ()))) for i, p in enumerate(pieces)]


def test_verdict_span_skips_the_think_block_and_text_before_the_answer():
    text = '<think>"anomaly": true would be wrong here</think><answer>{"anomaly": false, "defects": []}</answer>'
    offset, says = verdict_span(text)
    assert text[offset:offset + 5] == "false" and says is False
    assert verdict_span('{"anomaly": "maybe"}') is None and verdict_span("no answer") is None
    assert verdict_span('{"anomaly":True}')[1] is True


def test_qwen_style_split_sums_each_side_at_the_verdict_step():
    # Qwen writes `"anomaly": true` as `":` + ` true`; the alternatives there: ` false`, `false`, ` True`
    toks = _tokens("<answer>{\"", "anomaly", "\":", " true", "}</answer>",
                   top={3: ((" true", 0.6), (" false", 0.25), ("false", 0.05), (" True", 0.06), ("\"", 0.04))})
    toks[3] = TokenLogprob(" true", LOG(0.6), toks[3].top)
    k, offset, says = verdict_token(toks)
    assert (k, offset, says) == (3, 1, True)
    p = score_tokens(toks, ranked=True).verdict_probability
    assert p == pytest.approx((0.6 + 0.06) / (0.6 + 0.06 + 0.25 + 0.05))


def test_demo_tokenizer_style_merged_token_and_partial_words():
    # the demo model's tokenizer writes `true, "defects": [` as one token after `{"anomaly": `
    choice = TokenLogprob('true, "defects": [', LOG(0.7), (('false, "defects": [', LOG(0.2)), ("true", LOG(0.05)),
                                                           ('{"anomaly": true ', LOG(0.05))))
    assert probability_at(choice, 0, True, ranked=False) == pytest.approx(0.75 / 0.95)
    # a word cut in two (`tr` + `ue`): its rivals are the other word's beginnings
    partial = TokenLogprob("tr", LOG(0.5), (("fa", LOG(0.3)), ("f", LOG(0.1)), ("the", LOG(0.1))))
    assert probability_at(partial, 0, True, ranked=False) == pytest.approx(0.5 / 0.9)


def test_an_unlisted_rival_gets_at_most_what_the_list_leaves():
    # a server's top-3 does not list `false`: it has at most the smallest listed probability
    choice = TokenLogprob(" false", LOG(0.8), ((" false", LOG(0.8)), (" null", LOG(0.1)), ('"', LOG(0.05))))
    assert probability_at(choice, 1, False, ranked=True) == pytest.approx(0.05 / 0.85)
    # no alternatives at all: the chosen token's own probability, mapped to P(anomalous)
    assert probability_at(TokenLogprob(" false", LOG(0.8)), 1, False, ranked=True) == pytest.approx(0.2)
    assert probability_at(TokenLogprob(" true", LOG(0.8)), 1, True, ranked=True) == pytest.approx(0.8)


def test_defect_confidence_is_the_geometric_mean_over_label_and_box_tokens():
    pieces = ['<answer>{"anomaly": ', "true", ', "defects": [{"label": "', "scratch", '", "bbox_2d": [', "10",
              ", ", "20", ", 30, 40", "]}]}</answer>"]
    toks = [TokenLogprob(p, LOG(0.9)) for p in pieces]
    toks[3] = TokenLogprob("scratch", LOG(0.5))
    toks[5] = TokenLogprob("10", LOG(0.25))
    scores = score_tokens(toks, ranked=True)
    # label "scratch" (0.5) and the box `[10, 20, 30, 40]`: `[` sits in `", "bbox_2d": [` (0.9), 10, `, `, 20, the rest
    picked = [0.5, 0.9, 0.25, 0.9, 0.9, 0.9, 0.9]
    assert scores.defect_confidences == (pytest.approx(math.exp(sum(map(LOG, picked)) / len(picked))),)
    assert score_tokens([], ranked=True).verdict_probability is None


def test_the_threshold_decides_and_the_model_verdict_stays():
    f = Finding(Verdict.ANOMALOUS, (Defect("scratch"),), anomaly_score=0.62)
    assert decided_verdict(f, 0.5) is Verdict.ANOMALOUS and decided_verdict(f, 0.7) is Verdict.NORMAL
    shown = as_decided(f, 0.7)
    assert shown.verdict is Verdict.NORMAL and shown.defects == () and f.verdict is Verdict.ANOMALOUS
    assert as_decided(f, 0.5) is f
    assert decided_verdict(Finding(Verdict.NORMAL), 0.0) is Verdict.NORMAL  # no score: the model's verdict
    assert doubt(f, 0.6) == pytest.approx(0.02) and needs_review(f, 0.6, 0.1) and not needs_review(f, 0.2, 0.1)
    assert doubt(Finding(Verdict.UNPARSED, anomaly_score=0.5)) is None


def test_round_trip_keeps_scores_and_reads_old_findings():
    f = Finding(Verdict.ANOMALOUS, (Defect("scratch", None, 0.8125),), anomaly_score=0.75,
                verdict_probability=0.75, score_source="verdict_token")
    back = Finding.from_json(f.to_json())
    assert back == f and back.defects[0].confidence == 0.8125 and back.score_source == "verdict_token"
    old = Finding.from_dict({"verdict": "normal", "defects": [{"label": "x", "box": None}]})
    assert old.anomaly_score is None and old.defects[0].confidence is None and old.score_source == ""
    assert Finding.from_dict({"verdict": "normal", "anomaly_score": "nan"}).anomaly_score is None


# --- the bundled model: the score is the softmax at the verdict token, computed by hand -------------------

@pytest.fixture(scope="module")
def bundled():
    from lriad_desktop.core.backends.engine import Inspector

    # free generation: the hand computation below is the unmasked softmax (tests/test_grammar.py holds answers
    # to the grammar, where the same recorder reads the masked one)
    return Inspector(bundled_model_dir(), device="cpu", grammar=False).load()


def _hand_probabilities(inspector, image, object_name):
    """Generate greedily without the recorder, then one teacher-forced forward pass over prompt + answer:
    the log-softmax at every generated position."""
    import torch

    from lriad_desktop.core.inspection.prompting import build_messages

    proc, model = inspector._processor, inspector._model
    text = proc.apply_chat_template(build_messages(object_name), add_generation_prompt=True, tokenize=False)
    inputs = proc(text=[text], images=[image], padding=True, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=inspector.max_new_tokens, do_sample=False)
        n_prompt = inputs["input_ids"].shape[1]
        ids = out[0, n_prompt:].tolist()
        stops = set(model.generation_config.eos_token_id)
        end = next(n + 1 for n, t in enumerate(ids) if t in stops)
        full = out[:, :n_prompt + end]
        kinds = inputs["mm_token_type_ids"]  # which tokens are image tokens: M-RoPE positions need it
        kinds = torch.cat([kinds, torch.zeros((1, end), dtype=kinds.dtype)], dim=1)
        logits = model(input_ids=full, attention_mask=torch.ones_like(full), pixel_values=inputs["pixel_values"],
                       image_grid_thw=inputs["image_grid_thw"], mm_token_type_ids=kinds).logits[0]
    logp = torch.log_softmax(logits[n_prompt - 1:n_prompt - 1 + end].float(), dim=-1)
    return ids[:end], logp


@pytest.mark.parametrize("sample", ["metal_hole.jpg", "bottle_good.jpg"])
def test_score_equals_the_hand_softmax_at_the_verdict_token(bundled, sample):
    image = Image.open(bundled_model_dir().parents[1] / "samples" / sample).convert("RGB")
    finding = bundled.inspect(image, None)
    ids, logp = _hand_probabilities(bundled, image, None)
    tok = bundled._processor.tokenizer
    pieces = [tok.decode([i], skip_special_tokens=True) for i in ids]
    text = "".join(pieces)
    offset, says = verdict_span(text)
    starts = [sum(map(len, pieces[:n])) for n in range(len(pieces))]
    k = max(n for n in range(len(pieces)) if starts[n] <= offset and pieces[n])
    head = pieces[k][:offset - starts[k]].rstrip()
    # by hand: every vocabulary token that writes `true`/`false` (or begins to) in place of the chosen one
    p_true = p_false = 0.0
    for token_id in range(logp.shape[1]):
        t = tok.decode([token_id])
        if not t.startswith(head):
            continue
        rest = t[len(head):].lstrip().lower()
        if rest and (rest.startswith("true") or "true".startswith(rest)):
            p_true += math.exp(float(logp[k, token_id]))
        elif rest and (rest.startswith("false") or "false".startswith(rest)):
            p_false += math.exp(float(logp[k, token_id]))
    expected = p_true / (p_true + p_false)
    assert finding.verdict is (Verdict.ANOMALOUS if says else Verdict.NORMAL)
    assert finding.anomaly_score == pytest.approx(expected, rel=1e-3, abs=1e-9)
    assert finding.verdict_probability == finding.anomaly_score and finding.score_source == "verdict_token"
    # the chosen verdict token is the step's most probable one, and the score agrees with the verdict
    assert int(logp[k].argmax()) == ids[k] and (finding.anomaly_score >= 0.5) == says
    if finding.defects:  # its confidence: exp(mean log p) over the label and box tokens, by hand
        from lriad_desktop.core.inspection.confidence import _defect_spans

        spans = _defect_spans(text, offset)[0]
        picked = [n for n in range(len(pieces)) if pieces[n] and any(starts[n] < b and starts[n] + len(pieces[n]) > a
                                                                      for a, b in spans)]
        by_hand = math.exp(sum(float(logp[n, ids[n]]) for n in picked) / len(picked))
        assert finding.defects[0].confidence == pytest.approx(by_hand, rel=1e-3)


def test_left_padding_and_batches_keep_each_score(bundled):
    samples = bundled_model_dir().parents[1] / "samples"
    images = [Image.open(samples / n).convert("RGB") for n in ("metal_hole.jpg", "fabric_good.jpg")]
    alone = [bundled.inspect(im, name) for im, name in zip(images, ("metal plate", "woven fabric"))]
    batch = bundled.inspect_batch(images, ["metal plate", "woven fabric"])  # different prompt lengths: padded
    for a, b in zip(alone, batch):
        assert a.raw_text == b.raw_text
        assert b.anomaly_score == pytest.approx(a.anomaly_score, rel=1e-3, abs=1e-9)
        assert 0.0 <= b.anomaly_score <= 1.0


def test_scores_off_gives_the_same_verdict_without_a_score():
    from lriad_desktop.core.backends.engine import Inspector

    image = Image.open(bundled_model_dir().parents[1] / "samples" / "metal_hole.jpg").convert("RGB")
    plain = Inspector(bundled_model_dir(), device="cpu", scores=False).load().inspect(image)
    scored = Inspector(bundled_model_dir(), device="cpu").load().inspect(image)
    assert plain.raw_text == scored.raw_text and plain.anomaly_score is None and plain.score_source == ""

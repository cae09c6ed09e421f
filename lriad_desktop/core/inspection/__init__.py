"""The language of an inspection, without a model: what a finding is (verdict, defects, boxes in
original-image pixels), the coordinate frames of each Qwen-VL family, loading images safely, the prompt and the
output grammar, the tolerant parser, the anomaly score from token probabilities, and golden samples as the model
is shown them. The lowest room of core: it uses only the basics (`core.defect_kinds`, `core.paths`)."""

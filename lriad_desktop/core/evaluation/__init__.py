"""Measuring against the truth: labelled datasets (MVTec-AD, VisA, plain folders), accuracy, F1, IoU and per-class
metrics, AUROC/AP and their curves as PNG, and the exports of the reviewed set (CSV, JSON, COCO, YOLO, VLM-R1).
Uses the store, `core.backends` and `core.inspection`."""

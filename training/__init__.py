"""Training data and recipes for the bundled LR-IAD model (no Qt here)."""

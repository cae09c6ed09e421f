"""LR-IAD Desktop: mask-free industrial anomaly inspection with a reasoning multimodal LLM.

Importing this package is cheap on purpose (no torch, no transformers, no Qt): the GUI must
open fast and the heavy libraries load in the background when the model is first needed.
"""

__version__ = "0.1.0"

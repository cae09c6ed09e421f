"""Synthetic inspection data: procedural parts and textures, defects painted on them (or on a user's good photos),
grounded reasoning text, prompt names, the seeded sample stream and training targets in the output grammar.
The lowest room of training: uses `lriad_desktop.core` only."""

"""Recipes and rewards: GRPO with trl and a peft LoRA, the reward registry, the supervised warm start for a label
the model never says, training data from the inspector's flags, "Improve model" end to end, and the device a
recipe runs on. Uses `training.synthetic_data` and `lriad_desktop.core`."""

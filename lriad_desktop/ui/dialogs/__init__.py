"""The settings, models, decision-threshold and camera dialogs, and the ROC/PR curve they show."""

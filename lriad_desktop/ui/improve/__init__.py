"""Improve model: the panel, `lriad train` as a separate process, how training reads (log lines, curves, length),
a finished run's before/after results, model-version commands and the versions dialog."""

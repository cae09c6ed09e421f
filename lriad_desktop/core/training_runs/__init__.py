"""Training runs as the app sees them, without Qt and without the training code: the `lriad train --events
jsonl` protocol, a run's progress folded from its events, the time per step, the lock on an adapter folder, the
recovery of what a killed run left, and the guard that recommends keeping or discarding a new version. Uses the
store, `core.backends` and `core.inspection`."""

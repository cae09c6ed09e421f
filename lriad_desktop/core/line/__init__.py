"""On the line: the hot folder (complete files in landing order), watching a folder (inspect once, record,
publish, move), publishing verdicts over MQTT, camera capture, and the shift report. Uses the store,
`core.backends` and `core.inspection`."""

"""On the line, in the app: watching a folder, publishing findings over MQTT, the shift report action."""

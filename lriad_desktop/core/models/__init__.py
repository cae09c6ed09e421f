"""Which models this machine has and how to get one: the bundled demo model, the Hugging Face cache, the app's
models folder and added folders, each checked for fit; downloads from the hub, resumable, validated before use.
Uses `core.backends` (to read a folder as the engine would) and `core.inspection`; never the store."""

"""Qt-free core, in rooms (lowest first): `inspection` (the language of an inspection: findings, frames, images,
prompt, grammar, parser, confidence), `backends` (the engine, the model-server client, the pipeline, tiles),
`store` and `models`, then `anomaly_map`, `evaluation`, `line` and `training_runs`; a few basics beside them
(`paths`, `atomic_files`, `defect_kinds`, `devices`) and `settings` on top. The layers are import-linter
contracts in pyproject.toml."""

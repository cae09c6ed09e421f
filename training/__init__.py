"""Training, Qt-free, in rooms: `synthetic_data` (procedural parts, defects, reasoning, targets), `recipes` (GRPO,
rewards, warm start, Improve model) and `bundled_model` (building the tiny demo model)."""

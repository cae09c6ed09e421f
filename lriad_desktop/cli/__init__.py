"""The `lriad` command line: the GUI by default, one module per command group (`commands`: the parser, gui,
inspect and evaluate; `train`; `models`, `export`, `versions`; `line`: watch and report; `map`: the anomaly map
inside evaluate)."""

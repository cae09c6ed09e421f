"""The bundled demo model's tooling: building a tiny random-init Qwen-VL (tokenizer, processor, config), its vision
pre-training, its supervised stage with dense auxiliary losses, and the script that rebuilds `lriad-tiny` from
nothing. Uses `training.recipes` and `training.synthetic_data`."""

"""Running a model: the in-process transformers engine (a Qwen-VL folder + optional LoRA adapter), the model-server
client over the OpenAI chat API and its adapter names, the one pipeline every caller inspects through (batches,
retry one by one, progress), tiles for large images, model-file checks, images resized to the model input, token
probabilities from `generate`, and per-cell features of a model's own vision tower. Uses `core.inspection` and the
basics; never the store."""

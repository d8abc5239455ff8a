"""Runtime backends the families use: OpenVINO (CPU inference graphs, int8) and colbert-ai
(checkpoints and patches). LLM runtimes live in :mod:`rerank_lab.llm`."""

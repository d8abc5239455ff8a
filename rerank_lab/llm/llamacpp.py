"""llama.cpp (llama-cpp-python) as an LLM backend: quantised GGUF inference on the CPU.

Usage::

    llm = LlamaCppBackend()            # the packaged Qwen2.5-Coder-1.5B Q4_K_M
"""
from __future__ import annotations

from pathlib import Path

from .base import Completion, LLMBackend, Messages
from .packaged import DEFAULT_GGUF, PACKAGED_GGUF, packaged_gguf


class LlamaCppBackend(LLMBackend):
    """llama-cpp-python on a GGUF file (quantised inference; optional, only when installed).

    llama.cpp keeps the KV cache of the previous prompt and reuses its longest common prefix itself.
    """

    def __init__(self, model: str = DEFAULT_GGUF, n_ctx: int = 8192, n_threads: int | None = None):
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ImportError("LlamaCppBackend needs llama-cpp-python (`pip install llama-cpp-python`, "
                              "builds from source); or use TransformersBackend") from None
        path = packaged_gguf(model) if model in PACKAGED_GGUF else Path(model)
        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, logits_all=False, verbose=False)
        self.name = Path(path).name

    def _prompt_tokens(self, messages: Messages, assistant_prefix: str) -> list[int]:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        template = self.llm.metadata.get("tokenizer.chat_template")
        fmt = Jinja2ChatFormatter(template=template, eos_token="", bos_token="", add_generation_prompt=True)
        text = fmt(messages=messages).prompt + assistant_prefix
        return self.llm.tokenize(text.encode(), add_bos=False, special=True)

    def generate(self, messages, max_new_tokens=128, assistant_prefix=""):
        tokens = self._prompt_tokens(messages, assistant_prefix)
        out = self.llm.create_completion(tokens, max_tokens=max_new_tokens, temperature=0.0)
        usage = out.get("usage", {})
        return Completion(out["choices"][0]["text"], usage.get("prompt_tokens", len(tokens)),
                          usage.get("completion_tokens", 0))

    def next_token_logits(self, messages, candidates, assistant_prefix=""):
        tokens = self._prompt_tokens(messages, assistant_prefix)
        self.llm.reset()
        self.llm.eval(tokens)
        logits = self.llm.scores[self.llm.n_tokens - 1]
        ids = [self.llm.tokenize(c.encode(), add_bos=False, special=False)[0] for c in candidates]
        return Completion("", len(tokens), 0, 0, [float(logits[i]) for i in ids])



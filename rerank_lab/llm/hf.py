"""transformers as an LLM backend: any causal LM by hub id or folder, or a GGUF file
(``gguf_file=``, dequantised by transformers). Reuses the KV cache of the longest prompt
prefix shared with the previous call (system prompt + query across windows and pairs).

Usage::

    llm = TransformersBackend("Qwen/Qwen2.5-7B-Instruct")       # online, by id
"""
from __future__ import annotations

from pathlib import Path

from ..core.files import atomic_dir
from .base import Completion, LLMBackend, Messages, TokenizerText
from .packaged import DEFAULT_GGUF, PACKAGED_GGUF, model_cache_dir, packaged_gguf


def _hf_folder_for_packaged(name: str, dtype: str) -> Path:
    """Dequantise a packaged GGUF once into a plain HF folder (safetensors), so later loads
    take seconds instead of a minute of GGUF conversion. Built atomically (temp dir + rename)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = PACKAGED_GGUF[name]
    target = model_cache_dir() / f"{spec.name}-{spec.sha256[:12]}-{dtype}"
    if (target / "config.json").exists():
        return target
    gguf = packaged_gguf(name)
    with atomic_dir(target) as staging:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     dtype=getattr(torch, dtype))
        tokenizer.save_pretrained(staging)
        model.save_pretrained(staging)
        (staging / "SOURCE").write_text(f"{gguf.name} sha256={spec.sha256}\n")
    return target


def _quiet(fn, *args, **kwargs):
    """Call a transformers loader with its logger at ERROR: converted Qwen tokenizers trip a
    Mistral-specific regex warning (checked: same ids as the GGUF's own tokenizer)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return fn(*args, **kwargs)
    finally:
        hf_logging.set_verbosity(level)


class TransformersBackend(TokenizerText, LLMBackend):
    """A transformers causal LM with a chat template.

    ``model``: hub id, local folder, a packaged GGUF name (see ``PACKAGED_GGUF``), or a folder
    plus ``gguf_file=``. ``dtype="bfloat16"`` by default (≈4× fp32 matmul speed on recent CPUs).
    ``device="auto"``: CUDA when there is a GPU, else the CPU.
    """

    def __init__(self, model: str = DEFAULT_GGUF, gguf_file: str | None = None, dtype: str = "bfloat16",
                 device: str | None = "auto", reuse_prefix: bool = True, max_context: int = 8192):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..components.models import loading, pick_device, resolve_model

        self.torch = torch
        self.model_name = model
        self.device = pick_device(device)
        if gguf_file is None and model in PACKAGED_GGUF:
            path, kwargs = str(_hf_folder_for_packaged(model, dtype)), {}
        else:
            path = resolve_model(model)
            kwargs = {"gguf_file": gguf_file} if gguf_file else {}
        self.tokenizer = loading(model, _quiet, AutoTokenizer.from_pretrained, path, **kwargs)
        if self.tokenizer.chat_template is None:
            raise ValueError(f"{model!r} has no chat template; give an instruction-tuned chat model")
        self.dtype = dtype
        self.model = loading(model, AutoModelForCausalLM.from_pretrained, path, dtype=getattr(torch, dtype), **kwargs)
        self.model.to(self.device).eval()
        self.name = Path(str(model)).name if gguf_file is None else Path(gguf_file).name
        self.reuse_prefix = reuse_prefix
        self.max_context = max_context
        self._prev_ids: list[int] = []
        self._prev_cache = None

    @property
    def identity(self) -> str:
        """The runtime and precision are part of it: llama.cpp's Q4 kernels give other logits."""
        from ..components.models import model_identity

        model = model_identity(self.model_name) if self.model_name not in PACKAGED_GGUF else \
            f"{self.model_name}@{PACKAGED_GGUF[self.model_name].sha256[:16]}"
        # reduced precision rounds differently on a GPU; fp32 agrees across devices
        kind = self.device.split(":")[0]
        where = f"@{kind}" if kind != "cpu" and self.dtype != "float32" else ""
        return f"transformers-{self.dtype}{where}:{model}"

    def prompt_ids(self, messages: Messages, assistant_prefix: str = "") -> list[int]:
        ids = self.tokenize(self.prompt_text(messages) + assistant_prefix)
        if len(ids) > self.max_context:
            raise ValueError(f"prompt of {len(ids)} tokens exceeds max_context={self.max_context}; "
                             f"use a smaller window or shorter passages (max_passage_words)")
        return ids

    def _reusable_cache(self, ids: list[int]):
        """(cache, n) with the KV cache of the longest prefix shared with the last prompt."""
        if not self.reuse_prefix or self._prev_cache is None:
            return None, 0
        n = 0
        for a, b in zip(ids, self._prev_ids):
            if a != b:
                break
            n += 1
        n = min(n, len(ids) - 1)  # at least one new token must be run to get logits
        if n < 8:
            return None, 0
        cache = self._prev_cache
        cache.crop(n)
        return cache, n

    def _forward(self, ids: list[int]):
        """Last-position logits and the cache after running ``ids`` (reusing a shared prefix)."""
        from transformers import DynamicCache

        cache, n = self._reusable_cache(ids)
        if cache is None:
            cache = DynamicCache()
        x = self.torch.tensor([ids[n:]], device=self.device)
        with self.torch.inference_mode():
            out = self.model(input_ids=x, past_key_values=cache, use_cache=True,
                             cache_position=self.torch.arange(n, len(ids), device=self.device))
        self._prev_ids, self._prev_cache = list(ids), out.past_key_values
        return out.logits[0, -1].float(), n

    def logits_for_tokens(self, messages, token_ids, assistant_prefix=""):
        ids = self.prompt_ids(messages, assistant_prefix)
        logits, cached = self._forward(ids)
        return Completion("", len(ids), 0, cached, [float(logits[t]) for t in token_ids])

    def generate(self, messages, max_new_tokens=128, assistant_prefix=""):
        ids = self.prompt_ids(messages, assistant_prefix)
        logits, cached = self._forward(ids)
        eos = set(filter(None, [self.tokenizer.eos_token_id, *self._stop_ids()]))
        cache = self._prev_cache
        new: list[int] = []
        with self.torch.inference_mode():
            for step in range(max_new_tokens):
                token = int(logits.argmax())
                if token in eos:
                    break
                new.append(token)
                if step == max_new_tokens - 1:
                    break
                pos = len(ids) + len(new) - 1
                out = self.model(input_ids=self.torch.tensor([[token]], device=self.device), past_key_values=cache,
                                 use_cache=True, cache_position=self.torch.tensor([pos], device=self.device))
                logits, cache = out.logits[0, -1].float(), out.past_key_values
        # the cache now holds prompt + completion; the next call crops it to the shared prefix
        self._prev_ids, self._prev_cache = list(ids) + new, cache
        if len(new) and cache.get_seq_length() < len(self._prev_ids):  # last token not yet run
            self._prev_ids = self._prev_ids[:cache.get_seq_length()]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return Completion(text, len(ids), len(new), cached)

    def _stop_ids(self) -> list[int]:
        ids = []
        for tok in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>"):
            tid = self.tokenizer.convert_tokens_to_ids(tok)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id:
                ids.append(tid)
        return ids



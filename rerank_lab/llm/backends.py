"""LLM backends behind one small interface: chat generation and next-token logits.

Every backend takes chat ``messages`` (``[{"role": ..., "content": ...}]``) and returns a
:class:`Completion` with token counts, so rerankers count cost the same way everywhere.

- :class:`TransformersBackend`: any causal LM by hub id or folder, or a GGUF file
  (``gguf_file=``, dequantised by transformers). Reuses the KV cache of the longest
  prompt prefix shared with the previous call (system prompt + query across windows).
- :class:`OpenAIBackend`: an OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM,
  hosted models); uses the ``openai`` package when installed, plain urllib otherwise.
  Logits come from ``top_logprobs`` where the server returns them.
- :class:`LlamaCppBackend`: ``llama_cpp.Llama`` on a GGUF file, when llama-cpp-python is installed.

Usage::

    llm = load_backend()                         # offline default: packaged Qwen2.5-Coder-1.5B GGUF
    llm = load_backend("qwen2.5-0.5b-instruct-q4_k_m")   # the small packaged model (tests, smoke)
    llm = OpenAIBackend("castorini/rank_zephyr_7b_v1_full", base_url="http://localhost:8000/v1")
    out = llm.generate([{"role": "user", "content": "Say hi"}], max_new_tokens=8)
    out.text, out.prompt_tokens, out.completion_tokens
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .packaged import DEFAULT_GGUF, PACKAGED_GGUF, SMALL_GGUF, model_cache_dir, packaged_gguf

Messages = list[dict[str, str]]


@dataclass
class Completion:
    """What one LLM call returned and cost."""

    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0                            # prompt tokens served from a reused prefix
    logits: list[float] = field(default_factory=list)  # next_token_logits: one per candidate


class LLMBackend(ABC):
    """Chat generation plus next-token logits over candidate continuations."""

    name: str = "llm"

    @abstractmethod
    def generate(self, messages: Messages, max_new_tokens: int = 128, assistant_prefix: str = "") -> Completion:
        """Greedy completion of ``messages`` (the assistant turn starts with ``assistant_prefix``)."""

    @abstractmethod
    def next_token_logits(self, messages: Messages, candidates: Sequence[str], assistant_prefix: str = "") -> Completion:
        """Logit of each candidate's first token right after ``assistant_prefix`` (one forward pass)."""

    def single_tokens(self, texts: Sequence[str]) -> bool:
        """Whether each text is exactly one token, all distinct (unknown: False)."""
        return False

    @property
    def identity(self) -> str:
        return self.name


# --------------------------------------------------------------------------- transformers

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
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     dtype=getattr(torch, dtype))
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)
        (tmp / "SOURCE").write_text(f"{gguf.name} sha256={spec.sha256}\n")
        try:
            os.rename(tmp, target)
        except OSError:  # another process won the race: use theirs
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
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


class TransformersBackend(LLMBackend):
    """A transformers causal LM with a chat template.

    ``model``: hub id, local folder, a packaged GGUF name (see ``PACKAGED_GGUF``), or a folder
    plus ``gguf_file=``. ``dtype="bfloat16"`` by default (≈4× fp32 matmul speed on recent CPUs).
    """

    def __init__(self, model: str = DEFAULT_GGUF, gguf_file: str | None = None, dtype: str = "bfloat16",
                 device: str | None = None, reuse_prefix: bool = True, max_context: int = 8192):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.model_name = model
        if gguf_file is None and model in PACKAGED_GGUF:
            path, kwargs = str(_hf_folder_for_packaged(model, dtype)), {}
        else:
            from ..models import resolve_model
            path = resolve_model(model)
            kwargs = {"gguf_file": gguf_file} if gguf_file else {}
        self.tokenizer = _quiet(AutoTokenizer.from_pretrained, path, **kwargs)
        if self.tokenizer.chat_template is None:
            raise ValueError(f"{model!r} has no chat template; give an instruction-tuned chat model")
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype), **kwargs)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.name = Path(str(model)).name if gguf_file is None else Path(gguf_file).name
        self.reuse_prefix = reuse_prefix
        self.max_context = max_context
        self._prev_ids: list[int] = []
        self._prev_cache = None

    @property
    def identity(self) -> str:
        from ..models import model_identity
        return model_identity(self.model_name) if self.model_name not in PACKAGED_GGUF else \
            f"{self.model_name}@{PACKAGED_GGUF[self.model_name].sha256[:16]}"

    def prompt_ids(self, messages: Messages, assistant_prefix: str = "") -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = self.tokenizer(text + assistant_prefix, add_special_tokens=False)["input_ids"]
        if len(ids) > self.max_context:
            raise ValueError(f"prompt of {len(ids)} tokens exceeds max_context={self.max_context}; "
                             f"use a smaller window or shorter passages (max_passage_tokens)")
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

    def next_token_logits(self, messages, candidates, assistant_prefix=""):
        ids = self.prompt_ids(messages, assistant_prefix)
        logits, cached = self._forward(ids)
        token_ids = [self.candidate_token(c) for c in candidates]
        return Completion("", len(ids), 0, cached, [float(logits[t]) for t in token_ids])

    def single_tokens(self, texts):
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        return all(len(i) == 1 for i in ids) and len({i[0] for i in ids}) == len(ids)

    def candidate_token(self, text: str) -> int:
        """The first token of ``text`` as it would follow the prompt (no leading space)."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"candidate {text!r} tokenizes to nothing")
        return ids[0]

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


# --------------------------------------------------------------------------- OpenAI-compatible

class OpenAIBackend(LLMBackend):
    """An OpenAI-compatible chat endpoint (vLLM ``--served-model-name``, hosted APIs).

    ``base_url`` defaults to ``$OPENAI_BASE_URL`` or ``http://localhost:8000/v1``; the key to
    ``$OPENAI_API_KEY``. Prefix reuse is the server's business (vLLM: ``--enable-prefix-caching``).
    """

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 120.0, retries: int = 2):
        self.model = model
        self.name = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "http://localhost:8000/v1").rstrip("/")
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY", "EMPTY")
        self.timeout, self.retries = timeout, retries

    def _chat(self, messages: Messages, **params) -> dict:
        body = {"model": self.model, "messages": messages, "temperature": 0, **params}
        request = urllib.request.Request(
            f"{self.base_url}/chat/completions", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"})
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except (urllib.error.URLError, TimeoutError) as error:
                if attempt == self.retries:
                    raise ConnectionError(f"{self.base_url}/chat/completions did not answer ({error}); start the "
                                          f"server (e.g. `vllm serve {self.model}`) or set OPENAI_BASE_URL") from error
                time.sleep(2 ** attempt)
        raise AssertionError("unreachable")

    @staticmethod
    def _with_prefix(messages: Messages, assistant_prefix: str) -> tuple[Messages, dict]:
        if not assistant_prefix:
            return messages, {}
        # vLLM continues a trailing assistant message with continue_final_message
        return [*messages, {"role": "assistant", "content": assistant_prefix}], \
            {"continue_final_message": True, "add_generation_prompt": False}

    def generate(self, messages, max_new_tokens=128, assistant_prefix=""):
        msgs, extra = self._with_prefix(messages, assistant_prefix)
        reply = self._chat(msgs, max_tokens=max_new_tokens, **extra)
        usage = reply.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        return Completion(reply["choices"][0]["message"].get("content") or "", int(usage.get("prompt_tokens", 0)),
                          int(usage.get("completion_tokens", 0)), int(details.get("cached_tokens") or 0))

    def next_token_logits(self, messages, candidates, assistant_prefix=""):
        """Approximate logits by the server's top-20 logprobs; candidates missing from them get
        the lowest returned value minus 1 (the ordering among them is then input order)."""
        msgs, extra = self._with_prefix(messages, assistant_prefix)
        reply = self._chat(msgs, max_tokens=1, logprobs=True, top_logprobs=20, **extra)
        content = ((reply["choices"][0].get("logprobs") or {}).get("content") or [{}])[0]
        top = {t["token"]: t["logprob"] for t in content.get("top_logprobs", [])}
        floor = min(top.values(), default=0.0) - 1.0
        usage = reply.get("usage") or {}
        return Completion("", int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)),
                          0, [top.get(c, floor) for c in candidates])


# --------------------------------------------------------------------------- llama.cpp

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


# --------------------------------------------------------------------------- factory

_LOADED: dict[tuple, LLMBackend] = {}


def load_backend(model: str = DEFAULT_GGUF, backend: str = "transformers", **kwargs) -> LLMBackend:
    """A backend by name, loaded once per process (notebooks build many rerankers on one model).

    ``backend``: ``"transformers"`` (default), ``"openai"`` (``base_url=``), ``"llama-cpp"``.
    """
    key = (model, backend, tuple(sorted(kwargs.items())))
    if key not in _LOADED:
        if backend == "transformers":
            _LOADED[key] = TransformersBackend(model, **kwargs)
        elif backend == "openai":
            _LOADED[key] = OpenAIBackend(model, **kwargs)
        elif backend in {"llama-cpp", "llama_cpp", "llamacpp"}:
            _LOADED[key] = LlamaCppBackend(model, **kwargs)
        else:
            raise ValueError(f"unknown backend {backend!r}; use 'transformers', 'openai' or 'llama-cpp'")
    return _LOADED[key]


__all__ = ["Completion", "DEFAULT_GGUF", "LLMBackend", "LlamaCppBackend", "OpenAIBackend", "SMALL_GGUF",
           "TransformersBackend", "load_backend"]

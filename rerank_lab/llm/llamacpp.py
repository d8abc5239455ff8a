"""llama.cpp (llama-cpp-python) as an LLM backend: the packaged Q4_K_M GGUFs on their own runtime.

Quantised GGUF inference with no dequantisation step (transformers needs a 3.4 GB bf16 copy of
the 1.5B and runs it in bf16 matmuls; llama.cpp runs the Q4 weights directly). Two things the
plain ``Llama`` API does not do for us, done here:

* **logits**: with ``logits_all=False``, ``Llama.scores`` is never written; the next-token logits
  are read from the context right after ``eval`` (``llama_get_logits_ith(ctx, -1)``);
* **prefix reuse**: the KV cache keeps the previous prompt; a new prompt evaluates only the
  tokens after the longest prefix it shares with it (system prompt + query across windows, pairs
  and yes/no passages of one query), for generation and scoring alike.

``device="auto"`` offloads every layer to the GPU when this llama-cpp-python build can (a CUDA
build) and torch sees one; the CPU build runs on the CPU.

:class:`GGUFVocabulary` is a GGUF's tokenizer and chat template without its weights: the
OpenAI-compatible backend renders prompts and finds label tokens with it, exactly as this backend does.

Usage::

    llm = LlamaCppBackend()                            # the packaged Qwen2.5-Coder-1.5B Q4_K_M
    llm.generate(messages, max_new_tokens=40).text
"""
from __future__ import annotations

import atexit
import os
from pathlib import Path

import numpy as np

from .base import Completion, LLMBackend, Messages
from .packaged import DEFAULT_GGUF, PACKAGED_GGUF, packaged_gguf


LLAMA_CPP_MISSING = ("llama-cpp-python is not installed: `bash scripts/setup.sh llm` (or `pip install "
                     "'rerank-lab[llm]'`) builds it from source once, about 10 minutes on 2 cores; or use "
                     "backend='transformers', or a server (RERANK_LAB_LLM_BACKEND=openai, docs/families.md)")


def gguf_path(model: str) -> Path:
    """The GGUF file ``model`` names: a packaged name (joined and verified on first use) or a path."""
    path = packaged_gguf(model) if model in PACKAGED_GGUF else Path(model)
    if not Path(path).exists():
        raise FileNotFoundError(f"no GGUF file at {path}: give a packaged name ({', '.join(PACKAGED_GGUF)}) or a path")
    return Path(path)


def _llama(path: Path, **kwargs):
    try:
        from llama_cpp import Llama
        from llama_cpp._utils import suppress_stdout_stderr
    except ImportError:
        raise ImportError(LLAMA_CPP_MISSING) from None
    with suppress_stdout_stderr(disable=False):  # llama.cpp's own load notices, printed from C
        llm = Llama(model_path=str(path), verbose=False, **kwargs)
    atexit.register(llm.close)  # freed while the interpreter is whole (a late __del__ finds its C bindings gone)
    return llm


class GGUFText:
    """The chat template and tokenizer a GGUF file carries (on ``self.llm``, a ``llama_cpp.Llama``)."""

    llm: object
    name: str
    _template = None

    def prompt_text(self, messages: Messages) -> str:
        if self._template is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            template = self.llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise ValueError(f"{self.name} carries no chat template; give an instruction-tuned chat model")
            self._template = Jinja2ChatFormatter(template=template, eos_token="", bos_token="",
                                                 add_generation_prompt=True)
        return self._template(messages=messages).prompt

    def tokenize(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode(), add_bos=False, special=True)

    def token_text(self, token_id: int) -> str:
        return self.llm.detokenize([token_id]).decode("utf-8", errors="replace")

    @property
    def vocab_size(self) -> int:
        return int(self.llm.n_vocab())


class GGUFVocabulary(GGUFText):
    """A GGUF file's tokenizer and chat template, without its weights (llama.cpp ``vocab_only``)."""

    def __init__(self, model: str):
        path = gguf_path(model)
        self.llm = _llama(path, vocab_only=True)
        self.name = path.name


def gpu_offload(device: str | None) -> bool:
    """Whether llama.cpp should put the layers on the GPU: ``auto`` when this build can and torch
    sees a GPU; a named GPU only if the build can (else a clear error)."""
    import llama_cpp

    from ..components.models import pick_device

    where = pick_device(device)
    if where == "cpu":
        return False
    if llama_cpp.llama_supports_gpu_offload():
        return True
    if device in (None, "auto"):
        return False
    raise ValueError(f"this llama-cpp-python build runs on the CPU only, not on {device!r}: rebuild it with "
                     f"CMAKE_ARGS='-DGGML_CUDA=on' pip install --force-reinstall --no-cache-dir llama-cpp-python, "
                     f"or use backend='transformers' on the GPU")


class LlamaCppBackend(GGUFText, LLMBackend):
    """llama-cpp-python on a GGUF file (the ``llm`` extra). ``n_threads`` defaults to
    ``$RERANK_LAB_LLM_THREADS``, else the cores (on a CPU shared with other jobs one thread can be
    faster than two: llama.cpp's threads wait for each other at every layer)."""

    def __init__(self, model: str = DEFAULT_GGUF, n_ctx: int = 8192, n_threads: int | None = None,
                 reuse_prefix: bool = True, device: str = "auto"):
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            raise ImportError(LLAMA_CPP_MISSING) from None
        path = gguf_path(model)
        self.model_name = model
        self.offloaded = gpu_offload(device)
        self.device = "cuda" if self.offloaded else "cpu"
        threads = n_threads or int(os.environ.get("RERANK_LAB_LLM_THREADS") or 0) or os.cpu_count()
        self.llm = _llama(path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, logits_all=False,
                          n_gpu_layers=-1 if self.offloaded else 0)
        self.name = path.name
        self.reuse_prefix = reuse_prefix
        self._kv: list[int] = []          # the tokens whose keys and values the context holds
        self._template = None

    @property
    def identity(self) -> str:
        # the runtime is part of it: llama.cpp's Q4 kernels and transformers' bf16 give other logits,
        # and its GPU kernels others again
        where = "@gpu" if self.offloaded else ""
        if self.model_name in PACKAGED_GGUF:
            return f"llamacpp{where}:{self.model_name}@{PACKAGED_GGUF[self.model_name].sha256[:16]}"
        from ..components.models import model_identity

        return f"llamacpp{where}:{model_identity(str(self.model_name))}"

    # -- running ------------------------------------------------------------------------------
    def _logits(self) -> np.ndarray:
        import llama_cpp

        pointer = llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.llm.n_vocab(),)).copy()

    def _prefill(self, ids: list[int]) -> tuple[np.ndarray, int]:
        """Next-token logits after ``ids``, evaluating only what the context does not hold yet."""
        shared = 0
        if self.reuse_prefix:
            for a, b in zip(ids, self._kv):
                if a != b:
                    break
                shared += 1
        shared = min(shared, len(ids) - 1)  # at least one token must run to produce logits
        self.llm.n_tokens = shared          # eval() drops the cache from here on
        self.llm.eval(ids[shared:])
        self._kv = list(ids)
        return self._logits(), shared

    def logits_for_tokens(self, messages, token_ids, assistant_prefix=""):
        ids = self.prompt_ids(messages, assistant_prefix)
        logits, shared = self._prefill(ids)
        return Completion("", len(ids), 0, shared, [float(logits[t]) for t in token_ids])

    def generate(self, messages, max_new_tokens=128, assistant_prefix=""):
        ids = self.prompt_ids(messages, assistant_prefix)
        logits, shared = self._prefill(ids)
        stop = {self.llm.token_eos(), *(t for t in (self._special("<|im_end|>"), self._special("<|endoftext|>")) if t)}
        new: list[int] = []
        for step in range(max_new_tokens):
            token = int(np.argmax(logits))
            if token in stop:
                break
            new.append(token)
            if step == max_new_tokens - 1:
                break
            self.llm.eval([token])
            self._kv.append(token)
            logits = self._logits()
        text = self.llm.detokenize(new).decode("utf-8", errors="replace")
        return Completion(text, len(ids), len(new), shared)

    def _special(self, text: str) -> int | None:
        ids = self.tokenize(text)
        return ids[0] if len(ids) == 1 else None

"""An OpenAI-compatible server as an LLM backend: llama.cpp's (``scripts/llm_server.sh``), vLLM,
hosted APIs. Plain urllib, so no extra package on the client.

Two ways to ask, chosen by what the lab knows of the served model:

* **prompt mode** (``/v1/completions``) when the lab has the model's chat template and tokenizer:
  a packaged GGUF name or .gguf path (read from the GGUF itself, weights left out) or ``tokenizer=`` (the
  served model's hub id or folder). The lab renders the prompt and the assistant prefix itself,
  so the server sees exactly what the in-process backends run, and every scored token is known by
  id: its logprob is read from the answer's top ``logprobs`` (asked again wider when a candidate is
  not among the first 20, as far as the server allows). Logprobs differ from logits by one
  constant per position, which every family's score cancels (yes - no, a log-softmax over labels,
  A - B), so rankings equal the in-process llama.cpp backend's on the same GGUF;
* **chat mode** (``/v1/chat/completions``) otherwise (hosted chat APIs): candidates are matched as
  strings among the top-20 logprobs; FIRST, which must know its label tokens, asks for ``tokenizer=``.

Token counts are the server's ``usage``; a call's seconds are those of the answered request.
Refused connections, timeouts, 429 and 5xx are retried with exponential backoff; then one
:class:`ServerUnavailable` names the URL and how to start a server. On first use the backend
checks ``/v1/models``: a server serving another model is refused (its answers would be cached
under this model's name).

Usage::

    llm = OpenAIBackend("qwen2.5-0.5b-instruct-q4_k_m", base_url="http://127.0.0.1:8765/v1")  # llm_server.sh
    llm = OpenAIBackend("Qwen/Qwen2.5-7B-Instruct", base_url="http://gpu:8000/v1", tokenizer="Qwen/Qwen2.5-7B-Instruct")
"""
from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
import warnings
from typing import Sequence

from .base import Completion, LLMBackend, Messages, TokenizerText
from .packaged import PACKAGED_GGUF

DEFAULT_BASE_URL = "http://localhost:8000/v1"
#: top-logprob widths asked in turn until every candidate is among them (the last: the whole vocabulary)
LOGPROB_WIDTHS = (20, 1000)
RETRY_STATUS = (408, 429, 500, 502, 503, 504)


class ServerUnavailable(ConnectionError):
    """No OpenAI-compatible server answered at the URL (down, unreachable or too slow), after retries."""


class ServerRefused(ValueError):
    """The server answered a request with an error that another try would not change (4xx)."""

    def __init__(self, url: str, status: int, detail: str):
        super().__init__(f"the server at {url} refused the request (HTTP {status}): {detail}")
        self.status = status


class OpenAIBackend(LLMBackend):
    """An OpenAI-compatible endpoint (see the module docstring).

    ``base_url``: ``$OPENAI_BASE_URL`` or ``http://localhost:8000/v1``; ``api_key``: ``$OPENAI_API_KEY``.
    ``timeout``: seconds one request may take (``$RERANK_LAB_LLM_TIMEOUT``, default 120); ``retries``:
    further tries after a failed one, waiting ``backoff`` x 2^n seconds between them. ``tokenizer``:
    ``"auto"`` (a packaged GGUF name's or a .gguf path's own vocabulary, else chat mode), None (chat mode), or the
    served model's hub id or folder (prompt mode through its transformers tokenizer).
    """

    device = "server"

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 timeout: float | None = None, retries: int = 3, tokenizer: str | None = "auto",
                 backoff: float = 0.5):
        self.model = model
        self.name = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY", "EMPTY")
        self.timeout = float(timeout or os.environ.get("RERANK_LAB_LLM_TIMEOUT") or 120.0)
        self.retries, self.backoff = retries, backoff
        self.tokenizer_name = tokenizer
        self._text = None            # the template and tokenizer (prompt mode), loaded on first use
        self._checked = False
        self._warned_floor = False

    @property
    def identity(self) -> str:
        return f"openai:{self.base_url}:{self.model}"

    # -- what the lab knows of the model ---------------------------------------------------------
    @property
    def prompt_mode(self) -> bool:
        """Whether the lab renders prompts itself (it knows the template and tokenizer)."""
        return self.text is not None

    @property
    def text(self):
        """The served model's template and tokenizer: a GGUF vocabulary, a transformers tokenizer, or None."""
        if self._text is None and self.tokenizer_name is not None:
            if self.tokenizer_name == "auto":
                if self.model in PACKAGED_GGUF or self.model.endswith(".gguf") and os.path.isfile(self.model):
                    self._text = self._gguf_vocabulary()
            else:
                self._text = _HFText(self.tokenizer_name)
            if self._text is None:
                self.tokenizer_name = None  # nothing known: chat mode, decided once
        return self._text

    def _gguf_vocabulary(self):
        """The GGUF's own template and tokenizer, or None (chat mode, said once) where this machine
        cannot read it (no llama-cpp-python, or the packaged weights not installed)."""
        from .llamacpp import GGUFVocabulary

        try:
            return GGUFVocabulary(self.model)
        except ImportError as exc:
            warnings.warn(f"cannot read {self.model}'s chat template and tokenizer here ({exc}); asking "
                          f"{self.base_url} through its chat endpoint instead (FIRST then needs tokenizer=, and "
                          f"scores may differ from the in-process backends')", stacklevel=4)
            return None

    def _known(self):
        if self.text is None:
            raise NotImplementedError(f"{self.model} behind an OpenAI-compatible endpoint: pass tokenizer='<the "
                                      f"model's hub id or folder>' so the lab can tell which token a label starts with")
        return self.text

    def prompt_text(self, messages: Messages) -> str:
        return self._known().prompt_text(messages)

    def tokenize(self, text: str) -> list[int]:
        return self._known().tokenize(text)

    def token_text(self, token_id: int) -> str:
        return self._known().token_text(token_id)

    # -- talking to the server -------------------------------------------------------------------
    def _request(self, path: str, body: dict | None = None) -> tuple[dict, float]:
        """(answer, seconds of the answered request), retrying what a restart or a busy server explains."""
        url = f"{self.base_url}{path}"
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.api_key}", **({"Content-Type": "application/json"} if data else {})}
        reason = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    answer = json.loads(response.read())
                return answer, time.perf_counter() - t0
            except urllib.error.HTTPError as error:
                detail = error.read().decode("utf-8", errors="replace")[:300].replace("\n", " ")
                if error.code not in RETRY_STATUS:
                    raise ServerRefused(url, error.code, detail) from None
                reason = f"HTTP {error.code}: {detail}"
            except (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError) as error:
                cause = getattr(error, "reason", error)
                reason = f"no answer within {self.timeout:g} s" if isinstance(cause, (TimeoutError, socket.timeout)) \
                    else str(cause)
        raise ServerUnavailable(
            f"no OpenAI-compatible server answered at {self.base_url} ({reason}; {self.retries + 1} tries): start one "
            f"(`bash scripts/llm_server.sh --port {_port(self.base_url)} --model {self.model}` serves the packaged "
            f"GGUFs; vLLM: `vllm serve MODEL`) or point OPENAI_BASE_URL at one")

    def _check_model(self) -> None:
        """Refuse a server that serves another model (its answers would be cached under this one's name)."""
        if self._checked:
            return
        try:
            answer, _ = self._request("/models")
        except ServerRefused:  # no model list here (some servers): nothing to check against
            self._checked = True
            return
        served = [m.get("id") for m in answer.get("data", []) if isinstance(m, dict)]
        if served and self.model not in served:
            raise ValueError(f"the server at {self.base_url} serves {', '.join(map(str, served))}, not {self.model!r}: "
                             f"ask for the served model (RERANK_LAB_LLM={served[0]}) or start the server on "
                             f"{self.model!r}")
        self._checked = True

    def _ask(self, path: str, body: dict) -> tuple[dict, float]:
        self._check_model()
        return self._request(path, {"model": self.model, "temperature": 0, **body})

    @staticmethod
    def _usage(answer: dict) -> tuple[int, int, int]:
        usage = answer.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0), \
            int(details.get("cached_tokens") or 0)

    # -- the backend interface -------------------------------------------------------------------
    def generate(self, messages, max_new_tokens=128, assistant_prefix=""):
        if self.prompt_mode:
            # repeat_penalty 1: llama.cpp's server would otherwise penalise repeats (its default 1.1)
            answer, seconds = self._ask("/completions", {"prompt": self.prompt_text(messages) + assistant_prefix,
                                                         "max_tokens": max_new_tokens, "repeat_penalty": 1.0})
            text = answer["choices"][0].get("text") or ""
        else:
            msgs, extra = self._with_prefix(messages, assistant_prefix)
            answer, seconds = self._ask("/chat/completions", {"messages": msgs, "max_tokens": max_new_tokens, **extra})
            text = answer["choices"][0]["message"].get("content") or ""
        out = Completion(text, *self._usage(answer))
        out.seconds = seconds
        return out

    def logits_for_tokens(self, messages, token_ids, assistant_prefix=""):
        """Logprobs of ``token_ids`` as the next token (logits up to one constant, which scores cancel)."""
        prompt = self.prompt_text(messages) + assistant_prefix
        wanted = [int(t) for t in token_ids]
        widths = [w for w in LOGPROB_WIDTHS if w < self.text.vocab_size] + [self.text.vocab_size]
        seconds = 0.0
        for width in widths:
            try:
                answer, spent = self._ask("/completions", {"prompt": prompt, "max_tokens": 1, "logprobs": width,
                                                           "repeat_penalty": 1.0, "return_tokens_as_token_ids": True})
            except ServerRefused as refused:
                if width == widths[0] or refused.status != 400:
                    raise
                break  # the server caps logprobs (vLLM: --max-logprobs): keep the widest answer it gave
            seconds += spent
            found = self._top_by_id(answer, wanted)
            if all(t in found for t in wanted):
                break
        floor = min(found.values(), default=0.0) - 1.0
        if any(t not in found for t in wanted):
            self._warn_floor()
        out = Completion("", *self._usage(answer), logits=[found.get(t, floor) for t in wanted])
        out.seconds = seconds
        return out

    def _top_by_id(self, answer: dict, wanted: Sequence[int]) -> dict[int, float]:
        """{token id: logprob} for the wanted ids among the answer's first-position top logprobs
        (keys ``token_id:N`` where the server can say ids, vLLM; else the token's text)."""
        logprobs = answer["choices"][0].get("logprobs") or {}
        top = (logprobs.get("top_logprobs") or [{}])[0] or {}
        by_text = {self.token_text(t): t for t in wanted}
        found: dict[int, float] = {}
        for key, value in top.items():
            if key.startswith("token_id:") and key[9:].isdigit():
                token = int(key[9:])
                if token in wanted:
                    found[token] = float(value)
            elif key in by_text:
                found[by_text[key]] = float(value)
        return found

    def _warn_floor(self) -> None:
        if not self._warned_floor:
            warnings.warn(f"{self.base_url} returned too few logprobs for some candidates; they were scored just "
                          f"below its lowest (raise the server's limit, vLLM: --max-logprobs 1000, for exact scores)",
                          stacklevel=3)
            self._warned_floor = True

    def next_token_logits(self, messages, candidates, assistant_prefix=""):
        if self.prompt_mode:
            return super().next_token_logits(messages, candidates, assistant_prefix)
        return self._chat_top_logprobs(messages, list(candidates), assistant_prefix)

    @staticmethod
    def _with_prefix(messages: Messages, assistant_prefix: str) -> tuple[Messages, dict]:
        if not assistant_prefix:
            return messages, {}
        # vLLM continues a trailing assistant message with continue_final_message
        return [*messages, {"role": "assistant", "content": assistant_prefix}], \
            {"continue_final_message": True, "add_generation_prompt": False}

    def _chat_top_logprobs(self, messages, strings, assistant_prefix) -> Completion:
        """Chat mode: candidates matched as strings among the top-20 logprobs; one missing gets the
        lowest returned value minus 1 (the ordering among such is then input order)."""
        msgs, extra = self._with_prefix(messages, assistant_prefix)
        answer, seconds = self._ask("/chat/completions", {"messages": msgs, "max_tokens": 1, "logprobs": True,
                                                          "top_logprobs": 20, **extra})
        content = ((answer["choices"][0].get("logprobs") or {}).get("content") or [{}])[0]
        top = {t["token"]: t["logprob"] for t in content.get("top_logprobs", [])}
        floor = min(top.values(), default=0.0) - 1.0
        if any(c not in top for c in strings):
            self._warn_floor()
        out = Completion("", *self._usage(answer), logits=[top.get(c, floor) for c in strings])
        out.seconds = seconds
        return out


class _HFText(TokenizerText):
    """A served model's template and tokenizer from its hub id or folder (transformers)."""

    def __init__(self, model: str):
        from ..components.models import load_tokenizer

        self.tokenizer = load_tokenizer(model)
        self.name = model

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)


def _port(url: str) -> str:
    from urllib.parse import urlparse

    return str(urlparse(url).port or 8000)

"""An OpenAI-compatible chat endpoint as an LLM backend (vLLM ``--served-model-name``,
hosted APIs); plain urllib, so no extra package. Logits come from ``top_logprobs``.

Usage::

    llm = OpenAIBackend("castorini/rank_zephyr_7b_v1_full", base_url="http://localhost:8000/v1")
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

from .base import Completion, LLMBackend, Messages


class OpenAIBackend(LLMBackend):
    """An OpenAI-compatible chat endpoint (vLLM ``--served-model-name``, hosted APIs).

    ``base_url`` defaults to ``$OPENAI_BASE_URL`` or ``http://localhost:8000/v1``; the key to
    ``$OPENAI_API_KEY``. Prefix reuse is the server's business (vLLM: ``--enable-prefix-caching``).
    Logits come from the server's top-20 logprobs. ``tokenizer`` (the served model's hub id or
    folder) lets the lab check which token a continuation starts with, as FIRST needs; without it
    candidates are matched as strings.
    """

    def __init__(self, model: str, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 120.0, retries: int = 2, tokenizer: str | None = None):
        self.model = model
        self.name = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "http://localhost:8000/v1").rstrip("/")
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY", "EMPTY")
        self.timeout, self.retries = timeout, retries
        self.tokenizer_name = tokenizer
        self._tokenizer = None

    @property
    def identity(self) -> str:
        return f"openai:{self.base_url}:{self.model}"

    @property
    def tokenizer(self):
        if self.tokenizer_name is None:
            raise NotImplementedError(f"{self.model} behind an OpenAI-compatible endpoint: pass tokenizer='<the model's "
                                      f"hub id or folder>' so the lab can tell which token a label starts with")
        if self._tokenizer is None:
            from ..components.models import load_tokenizer

            self._tokenizer = load_tokenizer(self.tokenizer_name)
        return self._tokenizer

    def prompt_text(self, messages: Messages) -> str:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

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

    def _top_logprobs(self, messages, strings, assistant_prefix) -> Completion:
        """Approximate logits by the server's top-20 logprobs; strings missing from them get the
        lowest returned value minus 1 (the ordering among them is then input order)."""
        msgs, extra = self._with_prefix(messages, assistant_prefix)
        reply = self._chat(msgs, max_tokens=1, logprobs=True, top_logprobs=20, **extra)
        content = ((reply["choices"][0].get("logprobs") or {}).get("content") or [{}])[0]
        top = {t["token"]: t["logprob"] for t in content.get("top_logprobs", [])}
        floor = min(top.values(), default=0.0) - 1.0
        usage = reply.get("usage") or {}
        return Completion("", int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)),
                          0, [top.get(c, floor) for c in strings])

    def logits_for_tokens(self, messages, token_ids, assistant_prefix=""):
        return self._top_logprobs(messages, [self.token_text(t) for t in token_ids], assistant_prefix)

    def next_token_logits(self, messages, candidates, assistant_prefix=""):
        if self.tokenizer_name is not None:
            return super().next_token_logits(messages, candidates, assistant_prefix)
        return self._top_logprobs(messages, list(candidates), assistant_prefix)



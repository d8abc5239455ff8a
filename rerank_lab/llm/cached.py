"""LLM calls cached on disk: a rerun of a notebook or a sweep costs nothing, and an
interrupted run resumes where it stopped.

Keys are the backend's model identity, the call kind, the full chat messages, the assistant
prefix and the decoding settings (greedy decoding, ``max_new_tokens``, candidate strings);
values are the :class:`~rerank_lab.llm.base.Completion` as JSON with the seconds it cost.

Usage::

    llm = CachedBackend(load_backend())
    llm.generate(messages, max_new_tokens=40)     # computed once, then read back
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict

from ..components.stores import KeyValueStore, text_key
from .base import Completion, LLMBackend


class CachedBackend(LLMBackend):
    def __init__(self, backend: LLMBackend, path: str | None = None):
        self.backend, self.path = backend, path
        self.name = backend.name

    @property
    def identity(self) -> str:
        return self.backend.identity

    @property
    def device(self) -> str:
        return self.backend.device

    @property
    def store(self) -> KeyValueStore:
        return KeyValueStore.open("llm", self.path)

    def _cached(self, key_parts: tuple, compute) -> Completion:
        key = text_key(self.identity, *key_parts)
        t0 = time.perf_counter()
        hit = self.store.get_many([key]).get(key)
        lookup = time.perf_counter() - t0
        if hit is not None:
            out = Completion(**json.loads(hit[0]))
            out.cached, out.seconds, out.lookup_seconds = True, float(hit[1]), lookup
            return out
        t1 = time.perf_counter()
        out = compute()
        # a server backend times the request that answered (its retries' waits are no model time)
        seconds = out.seconds or time.perf_counter() - t1
        record = {k: v for k, v in asdict(out).items() if k not in ("cached", "seconds", "lookup_seconds")}
        t2 = time.perf_counter()
        self.store.put_many({key: (json.dumps(record), seconds)})
        out.cached, out.seconds, out.lookup_seconds = False, seconds, lookup + time.perf_counter() - t2
        return out

    def generate(self, messages, max_new_tokens=128, assistant_prefix=""):
        return self._cached(("generate", messages, assistant_prefix, max_new_tokens, "greedy"),
                            lambda: self.backend.generate(messages, max_new_tokens, assistant_prefix))

    def logits_for_tokens(self, messages, token_ids, assistant_prefix=""):
        return self._cached(("token-logits", messages, assistant_prefix, list(token_ids)),
                            lambda: self.backend.logits_for_tokens(messages, token_ids, assistant_prefix))

    def next_token_logits(self, messages, candidates, assistant_prefix=""):
        return self._cached(("logits", messages, assistant_prefix, list(candidates)),
                            lambda: self.backend.next_token_logits(messages, candidates, assistant_prefix))

    # the tokenizer and template are the wrapped backend's
    def prompt_text(self, messages):
        return self.backend.prompt_text(messages)

    def tokenize(self, text):
        return self.backend.tokenize(text)

    def token_text(self, token_id):
        return self.backend.token_text(token_id)

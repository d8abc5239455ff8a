"""Pointwise LLM relevance: score = logit("Yes") - logit("No") for one passage at a time.

The prompt puts the passage first and the question last ("Passage: ... Query: ... Does
the passage answer the query? Answer Yes or No."), the relevance-generation setup of
HELM (Liang et al., 2022) and UPR-style query-likelihood work (Sachan et al., 2022); the
yes/no logit gap is the log-odds of relevance. One forward pass per passage; no decoding.

Passage-first prompts share only the system header across calls, so prefix reuse saves
a few dozen tokens per call (counted in ``cached_prompt_tokens``); a query-first prompt
would share more but biases the model towards the query wording.

Usage::

    run = (hybrid() % 20 >> PointwiseLLMReranker())(dataset)
"""
from __future__ import annotations

from typing import Sequence

from ..llm.backends import LLMBackend
from ..llm.prompts import pointwise_messages
from .listwise import LLMReranker, truncate_words


class PointwiseLLMReranker(LLMReranker):
    """Yes/No log-odds per passage (``yes``/``no`` are the answer words looked up as first tokens)."""

    name = "llm-pointwise"

    def __init__(self, model: str | None = None, backend: str | LLMBackend | None = None,
                 max_passage_words: int | None = 100, yes: str = "Yes", no: str = "No",
                 name: str | None = None, **backend_kwargs):
        super().__init__(model, backend, max_passage_words, **backend_kwargs)
        self.yes, self.no = yes, no
        self.name = name or self.name

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        scores = []
        for document in documents:
            messages = pointwise_messages(query, truncate_words(document, self.max_passage_words))
            out = self.backend.next_token_logits(messages, [self.yes, self.no])
            out.completion_tokens = 1
            self._record(out)
            scores.append(out.logits[0] - out.logits[1])
        return scores


def llm_pointwise(**kwargs) -> PointwiseLLMReranker:
    """Registry factory: yes/no pointwise scoring on the offline default LLM."""
    return PointwiseLLMReranker(**kwargs)

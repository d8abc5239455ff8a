"""Pointwise LLM relevance: score = logit("Yes") - logit("No") for one passage at a time.

The prompt puts the passage first and the question last ("Passage: ... Query: ... Does
the passage answer the query? Answer Yes or No."), the relevance-generation setup of
HELM (Liang et al., 2022) and UPR-style query-likelihood work (Sachan et al., 2022); the
yes/no logit gap is the log-odds of relevance. One forward pass per passage; no decoding.

Passage-first prompts share only the system header across calls, so prefix reuse saves
a few dozen tokens per call (counted in ``cached_prompt_tokens``); a query-first prompt
would share more but biases the model towards the query wording.

Usage::

    run = (hybrid() % 20 >> PointwiseLLM())(dataset)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..llm.base import LLMBackend
from ..llm.prompts import pointwise_messages
from ..llm.scorer import LLMScorer


@dataclass(frozen=True)
class PointwiseLLM(LLMScorer):
    """Yes/No log-odds per passage (``yes``/``no`` are the answer words looked up as first tokens)."""

    model: str | None = None
    backend: str | LLMBackend | None = None
    max_passage_words: int | None = 100
    yes: str = "Yes"
    no: str = "No"
    cache: bool = True
    device: str = "auto"          # an in-process backend's device ("auto": the GPU when there is one)
    name: str = "llm-pointwise"

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        scores = []
        for passage in self.passages(documents):
            out = self.llm.next_token_logits(pointwise_messages(query, passage), [self.yes, self.no])
            out.completion_tokens = 1
            self.record(out)
            scores.append(out.logits[0] - out.logits[1])
        return scores


def llm_pointwise(**kwargs) -> PointwiseLLM:
    """Registry factory ``"llm-pointwise"``: yes/no pointwise scoring on the offline default LLM."""
    return PointwiseLLM(**kwargs)

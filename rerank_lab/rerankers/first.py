"""Single-pass FIRST (Reddy et al., 2024, arXiv:2406.15657): rank each window by the logits of
its passage labels at the first position of the answer; one forward pass per window, no
decoding. Windows slide back to front as in :mod:`.listwise`.

The labels are the ones the model's tokenizer emits as one token there (:mod:`rerank_lab.llm.labels`):
for Qwen2.5 the merged ``[X`` tokens, skipping ``O`` and ``Q``, which do not merge; for
SentencePiece models ``[`` then the bare letter. The prompt shows exactly the labels scored.

By default (``calibrate=True``) FIRST applies contextual calibration (Zhao et al., 2021,
"Calibrate Before Use", arXiv:2102.09690): the same prompt with every passage replaced by
``N/A`` gives the model's label prior for this query and window size, and each label is scored
by its log-probability minus that prior's (one short extra forward pass per window). A small
zero-shot model's FIRST logits are mostly that prior (notebook 04). Chosen on SciFact *train*
queries (BM25 top 20, the 1.5B; ``scripts/first_calibration.py --queries 8``): nDCG@10 0.6217
raw, 0.7665 calibrated, BM25's own order 0.7502. ``calibrate=False`` is the paper's raw scoring.

Usage::

    run = (hybrid() % 20 >> First())(dataset)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..llm.labels import LabelSet, single_token_labels
from ..llm.parse import Repairs
from ..llm.prompts import listwise_messages
from .listwise import Listwise, WindowResult


@dataclass(frozen=True)
class First(Listwise):
    """FIRST over single-token labels, contextually calibrated unless ``calibrate=False``; the
    window may not exceed the labels the tokenizer has (24 for Qwen2.5: a clear error says so)."""

    calibrate: bool = True
    name: str = "first"

    @property
    def label_set(self) -> LabelSet:
        """The labels and scored tokens for this model (decided once per tokenizer)."""
        return single_token_labels(self.llm)

    def rank_window(self, query: str, passages: list[str]) -> WindowResult:
        labels = self.label_set.take(len(passages))
        messages = listwise_messages(self.style, query, passages, labels=labels.labels)
        out = self.llm.logits_for_tokens(messages, labels.tokens, assistant_prefix=labels.prefix)
        out.completion_tokens = 1  # one position decoded
        self.record(out)
        scores = _log_softmax(out.logits)
        if self.calibrate:
            blank = listwise_messages(self.style, query, [CONTENT_FREE] * len(passages), labels=labels.labels)
            prior = self.llm.logits_for_tokens(blank, labels.tokens, assistant_prefix=labels.prefix)
            prior.completion_tokens = 1
            self.record(prior)
            scores = [s - p for s, p in zip(scores, _log_softmax(prior.logits))]
        order = sorted(range(len(passages)), key=lambda i: -scores[i])  # stable: ties keep input order
        return WindowResult((0, len(passages)), order, Repairs(), "")


CONTENT_FREE = "N/A"


def _log_softmax(logits) -> list[float]:
    """Log-probabilities over the window's labels (the model's mass on other tokens left out)."""
    top = max(logits)
    total = math.log(sum(math.exp(x - top) for x in logits)) + top
    return [float(x) - total for x in logits]


def first(**kwargs) -> First:
    """Registry factory ``"first"``: single-pass FIRST on the offline default LLM."""
    return First(**kwargs)

"""Single-pass FIRST (Reddy et al., 2024, arXiv:2406.15657): rank each window by the logits of
its passage labels at the first position of the answer; one forward pass per window, no
decoding. Windows slide back to front as in :mod:`.listwise`.

The labels are the ones the model's tokenizer emits as one token there (:mod:`rerank_lab.llm.labels`):
for Qwen2.5 the merged ``[X`` tokens, skipping ``O`` and ``Q``, which do not merge; for
SentencePiece models ``[`` then the bare letter. The prompt shows exactly the labels scored.

Usage::

    run = (hybrid() % 20 >> First())(dataset)
"""
from __future__ import annotations

from dataclasses import dataclass

from ..llm.labels import LabelSet, single_token_labels
from ..llm.parse import Repairs
from ..llm.prompts import listwise_messages
from .listwise import Listwise, WindowResult


@dataclass(frozen=True)
class First(Listwise):
    """FIRST over single-token labels; the window may not exceed the labels the tokenizer has
    (24 for Qwen2.5: a clear error says so)."""

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
        order = sorted(range(len(passages)), key=lambda i: -out.logits[i])  # stable: ties keep input order
        return WindowResult((0, len(passages)), order, Repairs(), "")


def first(**kwargs) -> First:
    """Registry factory ``"first"``: single-pass FIRST on the offline default LLM."""
    return First(**kwargs)

"""Single-pass FIRST (Reddy et al., 2024, arXiv:2406.15657): rank each window by the
next-token logits of its passage labels at the start of the assistant's answer; one forward
pass per window, no decoding. Windows slide back to front as in :mod:`.listwise`.

Usage::

    run = (hybrid() % 20 >> First())(dataset)
"""
from __future__ import annotations

from dataclasses import dataclass

from ..llm.parse import Repairs
from ..llm.prompts import label, listwise_messages
from .listwise import Listwise, WindowResult


@dataclass(frozen=True)
class First(Listwise):
    """FIRST over letter labels; ``window <= 26``."""

    name: str = "first"

    def __post_init__(self):
        super().__post_init__()
        if self.window > 26:
            raise ValueError(f"FIRST labels passages A..Z: window must be <= 26, got {self.window}")

    def rank_window(self, query: str, passages: list[str]) -> WindowResult:
        messages = listwise_messages(self.style, query, passages, alpha=True)
        labels = [label(i, alpha=True) for i in range(len(passages))]
        bracketed = [f"[{x}" for x in labels]
        if self.llm.single_tokens(bracketed):
            out = self.llm.next_token_logits(messages, bracketed, assistant_prefix="")
        else:
            out = self.llm.next_token_logits(messages, labels, assistant_prefix="[")
        out.completion_tokens = 1  # one position decoded
        self.record(out)
        order = sorted(range(len(passages)), key=lambda i: -out.logits[i])  # stable: ties keep input order
        return WindowResult((0, len(passages)), order, Repairs(), "")


def first(**kwargs) -> First:
    """Registry factory ``"first"``: single-pass FIRST on the offline default LLM."""
    return First(**kwargs)

"""The LLM backend interface: chat generation and next-token logits, with token counts.

Every backend takes chat ``messages`` (``[{"role": ..., "content": ...}]``) and returns a
:class:`Completion` with token counts and seconds, so rerankers count cost the same way
whatever runs the model.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence

Messages = list[dict[str, str]]


@dataclass
class Completion:
    """What one LLM call returned and cost."""

    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0                            # prompt tokens served from a reused prefix
    logits: list[float] = field(default_factory=list)  # next_token_logits: one per candidate
    cached: bool = False                              # served from the on-disk call cache
    seconds: float = 0.0                              # compute seconds of the call (recorded ones for a hit)
    lookup_seconds: float = 0.0                       # time spent in the call cache


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



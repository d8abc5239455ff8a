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
    seconds: float = 0.0                              # compute seconds of the call (recorded ones for a hit; a
                                                      # server backend fills in its answered request's)
    lookup_seconds: float = 0.0                       # time spent in the call cache


class LLMBackend(ABC):
    """Chat generation plus next-token logits, over the model's own chat template and tokenizer.

    Backends implement :meth:`generate`, :meth:`logits_for_tokens`, and where they can
    :meth:`prompt_text` / :meth:`tokenize` / :meth:`token_text`; on those the base class derives the
    one rule every scorer relies on: the token scored for a continuation is the first token of the
    canonical tokenisation of prompt + continuation (:meth:`continuation_token`), never the
    continuation tokenised on its own (a merge across the boundary would score a token the model
    never emits there).
    """

    name: str = "llm"
    device: str = "cpu"          # where the model computes: "cpu", "cuda", or "server" (another process's business)

    @abstractmethod
    def generate(self, messages: Messages, max_new_tokens: int = 128, assistant_prefix: str = "") -> Completion:
        """Greedy completion of ``messages`` (the assistant turn starts with ``assistant_prefix``)."""

    @abstractmethod
    def logits_for_tokens(self, messages: Messages, token_ids: Sequence[int], assistant_prefix: str = "") -> Completion:
        """Logits of ``token_ids`` as the next token after the prompt and ``assistant_prefix`` (one forward pass)."""

    def prompt_text(self, messages: Messages) -> str:
        """The chat template rendered up to the start of the assistant's answer."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its chat template")

    def tokenize(self, text: str) -> list[int]:
        """Token ids of ``text`` as the model reads it (special tokens in the text parsed)."""
        raise NotImplementedError(f"{type(self).__name__} does not expose its tokenizer")

    def token_text(self, token_id: int) -> str:
        raise NotImplementedError(f"{type(self).__name__} does not expose its tokenizer")

    def prompt_ids(self, messages: Messages, assistant_prefix: str = "") -> list[int]:
        return self.tokenize(self.prompt_text(messages) + assistant_prefix)

    def continuation_token(self, messages: Messages, assistant_prefix: str, continuation: str) -> int | None:
        """The first token of ``continuation`` in the canonical tokenisation of the whole text, or
        None when that tokenisation does not keep the prompt's tokens (the continuation merges with
        the prompt's last token, so no single next token stands for it)."""
        head = self.prompt_ids(messages, assistant_prefix)
        full = self.tokenize(self.prompt_text(messages) + assistant_prefix + continuation)
        if len(full) <= len(head) or full[: len(head)] != head:
            return None
        return full[len(head)]

    def next_token_logits(self, messages: Messages, candidates: Sequence[str], assistant_prefix: str = "") -> Completion:
        """Logit of each candidate continuation's first canonical token right after ``assistant_prefix``."""
        ids = []
        for candidate in candidates:
            token = self.continuation_token(messages, assistant_prefix, candidate)
            if token is None:
                raise ValueError(f"{candidate!r} does not start with a token of its own after the prompt in "
                                 f"{self.name}'s tokenizer; score another continuation")
            ids.append(token)
        return self.logits_for_tokens(messages, ids, assistant_prefix)

    @property
    def identity(self) -> str:
        return self.name


class TokenizerText:
    """Prompt text, token ids and token strings from a transformers tokenizer held as ``self.tokenizer``
    (its chat template renders the prompt): shared by the transformers backend and a served model's
    local tokenizer."""

    def prompt_text(self, messages: Messages) -> str:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def tokenize(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

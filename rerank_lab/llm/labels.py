"""Passage identifiers a model can score as one token: the FIRST label rule, per tokenizer.

FIRST (Reddy et al., 2024, arXiv:2406.15657) ranks a window by the logits of the passage
labels at the first position of the answer. That is only sound if each label is a token the
model really emits there: the first token of the canonical tokenisation of prompt + prefix +
label + "]" (a regression in rank_llm's FIRST, castorini/rank_llm#318, came from scoring other tokens). Two ways
exist, decided once per tokenizer:

* ``merged``: no assistant prefix; the label token is ``"[X"`` as one token (Qwen, GPT-style BPE
  vocabularies merge the bracket with most capitals; Qwen2.5 does not merge ``[O`` or ``[Q``, which
  are then skipped, not scored as a bare letter after a lone ``[``);
* ``split``: the assistant prefix ``"["``; the label token is the bare capital (SentencePiece
  models such as Mistral and Zephyr, as in the paper).

The mode with more valid capitals wins; labels are the valid capitals in alphabetical order.

Usage::

    labels = single_token_labels(backend)     # LabelSet(mode="merged", prefix="", labels=("A", ...), ...)
    labels.take(20)                           # the first 20, or a clear error if fewer exist
"""
from __future__ import annotations

import string
from dataclasses import dataclass

from .base import LLMBackend

PROBE = [{"role": "system", "content": "You rank passages."},
         {"role": "user", "content": "Rank the passages [A] to [Z]. Answer like [B] > [A]."}]


@dataclass(frozen=True)
class LabelSet:
    mode: str                      # "merged" or "split"
    prefix: str                    # the assistant prefix before the label token
    labels: tuple[str, ...]        # e.g. ("A", ..., "N", "P", "R", ...)
    tokens: tuple[int, ...]        # the token scored for each label
    model: str = ""

    def take(self, n: int) -> "LabelSet":
        """The first ``n`` labels; a clear error when the tokenizer has fewer single-token labels."""
        if n > len(self.labels):
            raise ValueError(f"FIRST needs {n} passage labels that {self.model or 'this model'}'s tokenizer emits as "
                             f"single tokens, and only {len(self.labels)} exist ({' '.join(self.labels)}): use a "
                             f"window of at most {len(self.labels)}")
        return LabelSet(self.mode, self.prefix, self.labels[:n], self.tokens[:n], self.model)


def _valid(backend: LLMBackend, prefix: str, shown: str, letters: str) -> dict[str, int]:
    """label -> token for the capitals whose canonical first token after the prompt is exactly
    ``shown % letter`` (so distinct per label)."""
    found = {}
    for letter in letters:
        token = backend.continuation_token(PROBE, prefix, f"{letter}]" if prefix else f"[{letter}]")
        if token is not None and backend.token_text(token) == shown.format(letter):
            found[letter] = token
    return found


def single_token_labels(backend: LLMBackend, letters: str = string.ascii_uppercase) -> LabelSet:
    """The label set FIRST uses with ``backend`` (cached on the backend: decided once per tokenizer)."""
    cache = backend.__dict__.setdefault("_first_labels", {})
    if letters not in cache:
        merged = _valid(backend, "", "[{}", letters)
        split = _valid(backend, "[", "{}", letters)
        mode, prefix, chosen = ("merged", "", merged) if len(merged) >= len(split) else ("split", "[", split)
        if len(set(chosen.values())) != len(chosen):
            raise ValueError(f"{backend.name}: label tokens are not distinct ({chosen}); FIRST cannot tell labels apart")
        cache[letters] = LabelSet(mode, prefix, tuple(chosen), tuple(chosen.values()), backend.name)
    return cache[letters]

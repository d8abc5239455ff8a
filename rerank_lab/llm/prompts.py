"""Prompt formats for LLM reranking, as chat messages.

- RankGPT (Sun et al., EMNLP 2023, arXiv:2304.09542): multi-turn, one user turn per passage,
  each acknowledged by the assistant; output ``[2] > [1] > ...``.
- RankZephyr (Pradeep et al., 2023, arXiv:2312.02724; rank_llm): one user turn holding
  every passage; the same output format.
- FIRST (Reddy et al., 2024, arXiv:2406.15657): the RankZephyr prompt with letter labels that
  the model's tokenizer emits as one token at the start of the answer (:mod:`.labels`), ranked
  from the logits of those tokens.
- Pointwise yes/no (passage first, as in relevance-generation prompting; Liang et al., HELM 2022;
  Sachan et al., 2022): score = logit("Yes") - logit("No").

Usage::

    messages = rankzephyr_messages("what is bm25", ["BM25 is ...", "Cats ..."])
    messages = pointwise_messages("what is bm25", "BM25 is ...")
"""
from __future__ import annotations

from typing import Callable, Sequence

from .parse import alpha_label

Messages = list[dict[str, str]]

RANKGPT_SYSTEM = ("You are RankGPT, an intelligent assistant that can rank passages based on their "
                  "relevancy to the query.")
RANKLLM_SYSTEM = ("You are RankLLM, an intelligent assistant that can rank passages based on their "
                  "relevancy to the query.")
POINTWISE_SYSTEM = "You are a search relevance judge. Answer only Yes or No."


def label(i: int, alpha: bool = False) -> str:
    """The identifier of the i-th (0-based) passage in a window: ``1`` or ``A``."""
    return alpha_label(i) if alpha else str(i + 1)


def _labels(n: int, alpha: bool, labels: Sequence[str] | None) -> list[str]:
    """The identifiers shown: ``labels`` when given (FIRST's single-token set), else 1..n or A.."""
    if labels is not None:
        if len(labels) < n:
            raise ValueError(f"{n} passages need {n} labels, got {len(labels)}")
        return list(labels[:n])
    return [label(i, alpha) for i in range(n)]


def _example(shown: Sequence[str]) -> str:
    return f"[{shown[1]}] > [{shown[0]}]" if len(shown) > 1 else f"[{shown[0]}]"


def rankgpt_messages(query: str, passages: Sequence[str], alpha: bool = False,
                     labels: Sequence[str] | None = None) -> Messages:
    n = len(passages)
    shown = _labels(n, alpha or labels is not None, labels)
    kind = "alphabetical" if alpha or labels is not None else "number"
    messages: Messages = [
        {"role": "system", "content": RANKGPT_SYSTEM},
        {"role": "user", "content": f"I will provide you with {n} passages, each indicated by {kind} identifier []. "
                                    f"\nRank the passages based on their relevance to query: {query}."},
        {"role": "assistant", "content": "Okay, please provide the passages."},
    ]
    for tag, passage in zip(shown, passages):
        messages.append({"role": "user", "content": f"[{tag}] {passage}"})
        messages.append({"role": "assistant", "content": f"Received passage [{tag}]."})
    messages.append({"role": "user", "content": (
        f"Search Query: {query}. \nRank the {n} passages above based on their relevance to the search query. "
        f"The passages should be listed in descending order using identifiers. The most relevant passages should "
        f"be listed first. The output format should be [] > [], e.g., {_example(shown)}. Only respond with the "
        f"ranking results, do not say any word or explain.")})
    return messages


def rankzephyr_messages(query: str, passages: Sequence[str], alpha: bool = False,
                        labels: Sequence[str] | None = None) -> Messages:
    n = len(passages)
    shown = _labels(n, alpha or labels is not None, labels)
    kind = "an alphabetical" if alpha or labels is not None else "a numerical"
    body = "\n".join(f"[{tag}] {p}" for tag, p in zip(shown, passages))
    user = (f"I will provide you with {n} passages, each indicated by {kind} identifier []. Rank the passages "
            f"based on their relevance to the search query: {query}.\n\n{body}\n\n"
            f"Search Query: {query}.\nRank the {n} passages above based on their relevance to the search query. "
            f"All the passages should be included and listed using identifiers, in descending order of relevance. "
            f"The output format should be [] > [], e.g., {_example(shown)}. Only respond with the ranking results, "
            f"do not say any word or explain.")
    return [{"role": "system", "content": RANKLLM_SYSTEM}, {"role": "user", "content": user}]


def pointwise_messages(query: str, passage: str) -> Messages:
    user = f"Passage: {passage}\nQuery: {query}\nDoes the passage answer the query? Answer Yes or No."
    return [{"role": "system", "content": POINTWISE_SYSTEM}, {"role": "user", "content": user}]


PROMPTS: dict[str, Callable[..., Messages]] = {"rankgpt": rankgpt_messages, "rankzephyr": rankzephyr_messages}


def listwise_messages(style: str, query: str, passages: Sequence[str], alpha: bool = False,
                      labels: Sequence[str] | None = None) -> Messages:
    if style not in PROMPTS:
        raise ValueError(f"unknown prompt style {style!r}; use one of {', '.join(PROMPTS)}")
    return PROMPTS[style](query, passages, alpha=alpha, labels=labels)

"""Label-free supervision from a corpus itself: pseudo-queries for its documents, filtered.

Three ways to ask a document for the query it answers, none of which reads a judgment:

* ``title``: the title is the query, the body (without the title) the positive; BEIR's
  scientific corpora have titles that read like claims and keyword queries;
* ``ict``: inverse cloze, a sentence of the document is the query and the rest the positive
  (Lee, Chang & Toutanova, "Latent Retrieval for Weakly Supervised Open Domain QA", ACL 2019);
* ``llm``: the packaged instruction-tuned LLM writes the query (InPars: Bonifacio et al., 2022;
  Promptagator: Dai et al., ICLR 2023), cleaned of code, markdown and quotes.

Then a **round-trip filter** (Promptagator's consistency filter): a pseudo-query is kept only when
the first stage brings its source document back within its top ``k``; optionally the pointwise
LLM must also say the document answers it. What survives becomes training groups with
first-stage hard negatives (:class:`~rerank_lab.train.negatives.Group`).

Usage::

    pseudo = pseudo_queries(load_dataset("scifact"), n=500, kind="title")
    kept, stats = roundtrip(dataset, pseudo, hybrid(), k=20)
    groups, texts = pseudo_groups(dataset, kept, hybrid(), n_negatives=7)
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Sequence

from ..core.data import Dataset, Query
from ..core.stage import FirstStage
from .negatives import Group

KINDS = ("title", "ict", "llm")
QUERY_PROMPT = ("Here is a passage from a scientific or medical article.\n\n{document}\n\n"
                "Write one question or claim, in plain English, that this passage answers or supports, "
                "as a person would type it into a search engine. Use at most 20 words. "
                "Reply with the question or claim only.")
_CODE = re.compile(r"(\bSELECT\b|\bFROM\b.*\bWHERE\b|\bdef\b|[{};=<>]|```|\bimport\b)", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


@dataclass(frozen=True)
class PseudoQuery:
    """A query written for ``source``; ``positive`` is the text it should retrieve (the body for
    titles, the rest of the document for inverse cloze, the whole document otherwise)."""

    query_id: str
    text: str
    source: str
    kind: str
    positive: str


def clean_query(text: str, min_words: int = 3, max_words: int = 40) -> str | None:
    """A generated query as plain text, or None when it is code, empty, or too short or long."""
    text = text.strip().split("\n")[0]
    text = re.sub(r"^(query|search query|question|claim)\s*:\s*", "", text, flags=re.IGNORECASE)
    text = text.strip().strip("`*\"'“”").strip()
    if not text or _CODE.search(text):
        return None
    words = text.split()
    return text if min_words <= len(words) <= max_words else None


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if len(s.split()) >= 5]


def pseudo_queries(dataset: Dataset, n: int, kind: str = "title", seed: int = 0, model: str | None = None,
                   words: int = 120, progress: bool = True) -> list[PseudoQuery]:
    """One pseudo-query for each of ``n`` sampled documents with a title and 20+ words of text
    (LLM generations cached through the shared LLM call cache; rejected ones are left out)."""
    if kind not in KINDS:
        raise ValueError(f"unknown pseudo-query kind {kind!r}: use one of {', '.join(KINDS)}")
    rng = random.Random(seed)
    pool = sorted(d for d, doc in dataset.corpus.items() if len(doc.text.split()) >= 20 and doc.title.strip())
    chosen = rng.sample(pool, min(n, len(pool)))
    out: list[PseudoQuery] = []
    if kind == "title":
        return [PseudoQuery(f"title-{d}", dataset.corpus[d].title, d, kind, dataset.corpus[d].text) for d in chosen]
    if kind == "ict":
        for d in chosen:
            parts = sentences(dataset.corpus[d].text)
            if len(parts) < 3:
                continue
            i = rng.randrange(len(parts))
            rest = " ".join(parts[:i] + parts[i + 1:])
            out.append(PseudoQuery(f"ict-{d}", parts[i], d, kind, f"{dataset.corpus[d].title} {rest}".strip()))
        return out
    from ..core.progress import progress_bar

    from ..llm.backends import load_backend
    from ..llm.cached import CachedBackend
    from ..llm.defaults import default_model
    from ..llm.scorer import truncate_words

    llm = CachedBackend(load_backend(model or default_model()))
    for d in progress_bar(chosen, desc="writing pseudo-queries", disable=not progress or len(chosen) < 5):
        prompt = QUERY_PROMPT.format(document=truncate_words(dataset.corpus[d].full_text, words))
        text = clean_query(llm.generate([{"role": "user", "content": prompt}], max_new_tokens=40).text)
        if text:
            out.append(PseudoQuery(f"llm-{d}", text, d, kind, dataset.corpus[d].full_text))
    return out


def roundtrip(dataset: Dataset, pseudo: Sequence[PseudoQuery], retriever: FirstStage, k: int = 20
              ) -> tuple[list[PseudoQuery], dict]:
    """The pseudo-queries whose source document ``retriever`` ranks within its top ``k``."""
    queries = {p.query_id: Query(p.query_id, p.text) for p in pseudo}
    run = retriever.retrieve(queries, dataset.corpus, k)
    kept = [p for p in pseudo if p.source in run.doc_ids(p.query_id)]
    return kept, {"written": len(pseudo), "kept": len(kept), "roundtrip_k": k}


def llm_agrees(pseudo: Sequence[PseudoQuery], dataset: Dataset, threshold: float = 0.0, words: int = 80,
               model: str | None = None, progress: bool = True) -> list[PseudoQuery]:
    """The pseudo-queries for which the pointwise LLM (``model``, the offline default when None)
    says the source answers them (yes/no log-odds above ``threshold``)."""
    from ..core.progress import progress_bar
    from ..rerankers.llm_pointwise import PointwiseLLM

    judge = PointwiseLLM(model=model, max_passage_words=words)
    return [p for p in progress_bar(pseudo, desc="LLM agreement", disable=not progress or len(pseudo) < 5)
            if judge.score(p.text, [dataset.corpus[p.source].full_text])[0] > threshold]


def pseudo_groups(dataset: Dataset, pseudo: Sequence[PseudoQuery], retriever: FirstStage, n_negatives: int = 7,
                  depth: int = 50, skip_top: int = 3, seed: int = 0) -> tuple[list[Group], dict[str, str]]:
    """Training groups (positive first, first-stage hard negatives from ranks ``skip_top+1..depth``,
    never the source) and the texts they name: a positive's text is the pseudo-query's
    ``positive`` (keyed ``<source>#<kind>``), a negative's the document as the corpus has it,
    except for titles, where every text is a body (so the title is no shortcut)."""
    rng = random.Random(seed)
    queries = {p.query_id: Query(p.query_id, p.text) for p in pseudo}
    run = retriever.retrieve(queries, dataset.corpus, depth)
    body_only = all(p.kind == "title" for p in pseudo)
    texts: dict[str, str] = {}
    groups = []
    for p in pseudo:
        ranking = run.doc_ids(p.query_id)
        pool = [d for d in ranking[skip_top:] if d != p.source]
        if not pool:
            continue
        negatives = rng.sample(pool, min(n_negatives, len(pool)))
        while len(negatives) < n_negatives:
            negatives.append(rng.choice(pool))
        positive = f"{p.source}#{p.kind}"
        texts[positive] = p.positive
        for d in negatives:
            texts[d] = dataset.corpus[d].text if body_only else dataset.corpus[d].full_text
        ranks = {d: i + 1 for i, d in enumerate(ranking)}
        groups.append(Group(dataset.name, p.query_id, p.text, positive, negatives,
                            {**{d: ranks[d] for d in negatives if d in ranks},
                             **({positive: ranks[p.source]} if p.source in ranks else {})}))
    return groups, texts


def label_free_groups(dataset: Dataset, retriever: FirstStage, kind: str, n: int, roundtrip_k: int = 20,
                      llm_filter: bool = False, n_negatives: int = 7, depth: int = 50, skip_top: int = 3,
                      seed: int = 0) -> tuple[list[Group], dict[str, str]]:
    """The whole label-free supervision of one corpus: ``n`` pseudo-queries of ``kind``, kept when
    ``retriever`` brings their source back in its top ``roundtrip_k`` (and, with ``llm_filter``, the
    pointwise LLM agrees), as training groups with first-stage hard negatives, and their texts."""
    written = pseudo_queries(dataset, n, kind, seed=seed)
    kept, stats = roundtrip(dataset, written, retriever, roundtrip_k)
    if llm_filter:
        kept = llm_agrees(kept, dataset)
    print(f"[pseudo-queries] {dataset.name}: {stats['written']} written ({kind}), {stats['kept']} bring their "
          f"source back in the top {roundtrip_k}, {len(kept)} kept", flush=True)
    return pseudo_groups(dataset, kept, retriever, n_negatives, depth, skip_top, seed)


__all__ = ["KINDS", "PseudoQuery", "clean_query", "label_free_groups", "llm_agrees", "pseudo_groups", "pseudo_queries",
           "roundtrip"]

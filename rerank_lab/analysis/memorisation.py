"""The memorisation probe: does a trained reranker like its training positives whatever the query?

Score a sample of the documents that were positives in the model's training judgments and a
sample of other documents of the same corpus under queries that carry no information about
them (queries of another dataset, the empty query, "the"), and report the AUC of "was a
training positive" per probe query. A reranker that reads relevance scores both samples alike
(AUC near 0.5); one that learnt a document prior (which documents tend to be relevant) ranks its
training positives higher under any query, and the train/test document overlap of corpora like
SciFact and NFCorpus then passes that prior off as lift (:mod:`~rerank_lab.analysis.contamination`).
``contrast="relevant"`` compares with documents relevant in the dataset's other splits that were
never training positives instead: it separates memory of particular documents from a prior for
the kind of document that gets judged.

Usage::

    result = memorisation_probe(load_reranker("ce"), "scifact")
    result.auc, result.per_query            # mean AUC; AUC under each probe query
    hybrid() % 100 >> Interpolate(TrainingPositives("scifact"), alpha=0.2)   # a pure memoriser, for teaching
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..components.provenance import training_positives
from ..core.provenance import provenance
from ..core.stage import Scorer
from ..data import load_dataset

#: the dataset whose queries probe each dataset's documents (unrelated topics)
PROBE_SOURCES = {"scifact": "nfcorpus", "nfcorpus": "scifact"}
NEUTRAL_QUERIES = {"empty": "", "the": "the"}
CONTRASTS = ("corpus", "relevant")


@dataclass(frozen=True)
class ProbeResult:
    """Mean AUC over probe queries (0.5: no preference for training positives) and each one's."""

    dataset: str
    auc: float
    per_query: Mapping[str, float]
    positives: int
    others: int
    contrast: str = "corpus"
    queries: Mapping[str, str] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "auc": round(self.auc, 4), "auc_min": round(min(self.per_query.values()), 4),
                "auc_max": round(max(self.per_query.values()), 4), "positives": self.positives,
                "others": self.others, "contrast": self.contrast,
                "per_query": {k: round(v, 4) for k, v in self.per_query.items()}}


def auc(positive_scores: Sequence[float], other_scores: Sequence[float]) -> float:
    """P(a positive scores above an other), ties counting half (Mann-Whitney U / (n1 n2))."""
    from scipy.stats import rankdata

    pos, neg = np.asarray(positive_scores, float), np.asarray(other_scores, float)
    if not len(pos) or not len(neg):
        raise ValueError("the probe needs documents on both sides: training positives and others")
    ranks = rankdata(np.concatenate([pos, neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def probe_queries(dataset: str, n: int = 5, seed: int = 0) -> dict[str, str]:
    """``n`` test queries of an unrelated dataset, the empty query and "the"."""
    source = PROBE_SOURCES.get(dataset)
    queries: dict[str, str] = {}
    if source is not None:
        other = load_dataset(source, split="test")
        for qid in random.Random(seed).sample(sorted(other.queries), n):
            queries[f"{source}:{qid}"] = other.queries[qid].text
    return {**queries, **NEUTRAL_QUERIES}


def memorisation_probe(reranker: object, dataset: str, training: object = None, n: int = 150,
                       contrast: str = "corpus", queries: Mapping[str, str] | None = None,
                       seed: int = 0) -> ProbeResult:
    """The probe for ``reranker`` on ``dataset``'s corpus. ``training``: the judgments to probe for
    (a qrels mapping, or records); default the reranker's own provenance. An interpolating stage
    is probed through the scorer it mixes in (the mixing weight says nothing about memory)."""
    if contrast not in CONTRASTS:
        raise ValueError(f"unknown contrast {contrast!r}: use one of {', '.join(CONTRASTS)}")
    scorer = getattr(reranker, "scorer", reranker)
    corpus = load_dataset(dataset, split="test").corpus
    if isinstance(training, Mapping):
        seen = {d for judged in training.values() for d, r in judged.items() if r >= 1}
    else:
        seen = set(training_positives(provenance(reranker) if training is None else training, dataset))
    seen &= set(corpus)
    if not seen:
        raise ValueError(f"{getattr(reranker, 'name', reranker)!r} records no training positive on {dataset}: "
                         f"nothing to probe (give training= the judgments it learnt from)")
    pool = sorted(set(corpus) - seen) if contrast == "corpus" else sorted(_relevant_elsewhere(dataset) - seen)
    rng = random.Random(seed)
    positives = rng.sample(sorted(seen), min(n, len(seen)))
    others = rng.sample(pool, min(n, len(pool)))
    texts = [corpus[d].full_text for d in positives + others]
    queries = dict(queries) if queries is not None else probe_queries(dataset, seed=seed)
    per_query = {}
    for name, text in queries.items():
        scores = scorer.score(text, texts)
        per_query[name] = auc(scores[: len(positives)], scores[len(positives):])
    return ProbeResult(dataset, float(np.mean(list(per_query.values()))), per_query, len(positives), len(others),
                       contrast, queries)


def _relevant_elsewhere(dataset: str) -> set[str]:
    import warnings

    from ..data import dataset_dir

    relevant: set[str] = set()
    for path in sorted((dataset_dir(dataset) / "qrels").glob("*.tsv")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qrels = load_dataset(dataset, split=path.stem).qrels
        relevant |= {d for judged in qrels.values() for d, r in judged.items() if r >= 1}
    return relevant


__all__ = ["CONTRASTS", "ProbeResult", "auc", "memorisation_probe", "probe_queries"]


@dataclass(frozen=True)
class TrainingPositives(Scorer):
    """A reranker that reads no query: 1 for a document that was a positive in ``dataset``'s
    ``split`` judgments, 0 otherwise. It knows nothing of relevance, yet mixed into a first stage
    it lifts SciFact test, because train and test judgments share documents: the teaching case of a
    lift from memory, which :class:`~rerank_lab.analysis.experiment.Experiment` flags (it declares
    what it read in ``trained_on``, as a trained model's records do)."""

    dataset: str = "scifact"
    split: str = "train"
    name: str = "memoriser"

    @property
    def trained_on(self) -> tuple[str, ...]:
        return (f"{self.dataset}:{self.split}",)

    def _known(self) -> set[str]:
        if "known" not in self._state:
            judged = load_dataset(self.dataset, split=self.split)
            self._state["known"] = {judged.corpus[d].full_text for q in judged.qrels.values() for d, r in q.items()
                                    if r >= 1 and d in judged.corpus}
        return self._state["known"]

    def score(self, query: str, documents: Sequence[str]) -> list[float]:
        known = self._known()
        return [float(d in known) for d in documents]

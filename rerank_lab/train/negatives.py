"""Hard negatives for reranker training, mined from a first stage (BM25 by default).

Negatives come from the first stage's ranks ``skip_top .. depth``: the very top ranks of
an unjudged pool hold many relevant-but-unjudged documents (false negatives), as noted by
Qu et al., "RocketQA" (NAACL 2021). Judged documents are never negatives.

``cross_query=k`` draws ``k`` of each group's negatives from the positives of *other* training
queries (those this query's first stage retrieved first, the hardest): every positive document
then also appears as a negative elsewhere, so a listwise loss cannot be lowered by learning which
documents tend to be relevant (a document prior that the train/test document overlap of SciFact
and NFCorpus would pass off as lift).

Usage::

    groups = mine_groups(load_dataset("scifact", split="train"), BM25(), n_negatives=7)
    groups[0].query, groups[0].positive, groups[0].negatives
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Sequence

from ..data import Dataset, dataset_dir, load_dataset
from ..core.stage import FirstStage


@dataclass
class Group:
    """One training group: a query, one relevant document and hard negatives (doc ids)."""

    dataset: str
    query_id: str
    query: str
    positive: str
    negatives: list[str]
    first_stage_ranks: dict[str, int] = field(default_factory=dict)


def mine_groups(dataset: Dataset, retriever: FirstStage | None = None, n_negatives: int = 7,
                depth: int = 50, skip_top: int = 3, positives_per_query: int = 1, seed: int = 0,
                query_ids: Sequence[str] | None = None, allow_test: bool = False,
                cross_query: int = 0) -> list[Group]:
    """One group per (query, positive): ``n_negatives`` sampled from first-stage ranks
    ``skip_top+1 .. depth`` that are not judged for the query, ``cross_query`` of them replaced by
    positives of other queries (never one judged for this query). Queries whose pool has no
    unjudged document are skipped."""
    if not 0 <= cross_query <= n_negatives:
        raise ValueError(f"cross_query must lie in 0..n_negatives ({n_negatives}), got {cross_query}")
    if dataset.split == "test" and not allow_test:
        raise ValueError(f"refusing to mine training groups from the test split of {dataset.name!r}; "
                         f"load split='train' (or 'dev')")
    if retriever is None:
        from ..first_stage import BM25

        retriever = BM25()
    qids = list(query_ids) if query_ids is not None else sorted(dataset.queries)
    queries = {q: dataset.queries[q] for q in qids}
    run = retriever.retrieve(queries, dataset.corpus, depth)
    rng = random.Random(seed)
    all_positives = sorted({d for q in qids for d, r in dataset.qrels.get(q, {}).items()
                            if r >= 1 and d in dataset.corpus})
    groups: list[Group] = []
    for qid in qids:
        judged = dataset.qrels.get(qid, {})
        positives = sorted(d for d, r in judged.items() if r >= 1 and d in dataset.corpus)
        ranking = run.doc_ids(qid)
        ranks = {d: i + 1 for i, d in enumerate(ranking)}
        pool = [d for d in ranking[skip_top:] if d not in judged]
        if not positives or not pool:
            continue
        for pos in rng.sample(positives, min(positives_per_query, len(positives))):
            others = _other_positives(ranking, all_positives, judged, cross_query, rng)
            negs = others + rng.sample(pool, min(n_negatives - len(others), len(pool)))
            while len(negs) < n_negatives:  # short pools: repeat rather than change group size
                negs.append(rng.choice(pool))
            groups.append(Group(dataset.name, qid, queries[qid].text, pos, negs,
                                {d: ranks[d] for d in [pos, *negs] if d in ranks}))
    return groups


def _other_positives(ranking: Sequence[str], positives: Sequence[str], judged: dict, k: int,
                     rng: random.Random) -> list[str]:
    """``k`` positives of other queries, not judged for this one: those the first stage ranked
    for this query first (the hardest), then random ones."""
    if k == 0:
        return []
    is_positive = set(positives)
    hard = [d for d in ranking if d in is_positive and d not in judged][:k]
    rest = [d for d in positives if d not in judged and d not in hard]
    return hard + rng.sample(rest, min(k - len(hard), len(rest)))


def negatives_retriever(name: str) -> FirstStage:
    """The first stage hard negatives are mined from, by name: ``"bm25"`` or ``"hybrid"``."""
    from ..first_stage import BM25, hybrid

    if name == "bm25":
        return BM25()
    if name == "hybrid":
        return hybrid()
    raise ValueError(f"unknown retriever {name!r} for negatives: use 'bm25' or 'hybrid'")


def split_queries(name: str, holdout: int, seed: int) -> tuple[list[str], list[str], str]:
    """(train query ids, tuning query ids, tuning split): datasets with a dev split tune on it,
    the others on ``holdout`` train queries that training never sees. Those held-out queries
    are also document-disjoint from training: a train query that judges any document a
    held-out query judges is dropped, since SciFact claims often cite the same abstract and a
    reranker that memorised it would flatter the tuning."""
    train = load_dataset(name, split=train_split(name))
    qids = sorted(train.queries)
    if name != "toy" and (dataset_dir(name) / "qrels" / "dev.tsv").exists():
        return qids, sorted(load_dataset(name, split="dev").queries), "dev"
    if name == "toy":
        return qids, [], "train"
    rng = random.Random(seed)
    held = sorted(rng.sample(qids, min(holdout, len(qids) // 5)))
    held_set = set(held)
    held_docs = {d for q in held for d, r in train.qrels.get(q, {}).items() if r >= 1}
    kept = [q for q in qids if q not in held_set
            and not any(r >= 1 and d in held_docs for d, r in train.qrels.get(q, {}).items())]
    return kept, held, "train"


def tuning_queries(name: str) -> tuple[list[str], str]:
    """The lab's tuning query ids of ``name`` and their split (:func:`split_queries`: SciFact's 100
    held-out train queries, seed 0; NFCorpus dev)."""
    _, ids, split = split_queries(name, 100, 0)
    return ids, split


def tuning_dataset(name: str) -> Dataset:
    """:func:`tuning_queries` as a dataset restricted to them."""
    ids, split = tuning_queries(name)
    return load_dataset(name, split=split).restrict(ids)


def train_split(name: str) -> str:
    return "test" if name == "toy" else "train"  # the toy set has one split, used only by tests


def clean_validation(records, dataset: str = "scifact", holdout: int = 100, seed: int = 0):
    """SciFact's held-out train queries (never trained on) that are clean for a model with
    training ``records``: the only queries a choice may be made on."""
    from ..analysis.contamination import contamination

    _, held, split = split_queries(dataset, holdout, seed)
    data = load_dataset(dataset, split=split).restrict(held)
    trained = [r for r in records if r.role == "train"]
    return data.restrict(contamination(data, trained).clean)

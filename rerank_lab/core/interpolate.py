"""Score mixing as a stage: blend a reranker's scores with the incoming run's, per query.

final = alpha * norm(reranker) + (1 - alpha) * norm(previous) over the first ``rerank_depth``
candidates (all when None), z-score or min-max normalised per query; the candidates below
``rerank_depth`` keep their order underneath. Score interpolation as in Wang, Zhuang &
Zuccon, "BERT-based Dense Retrievers Require Interpolation with BM25" (ICTIR 2021).
alpha = 1 is the reranker alone (on the top ``rerank_depth``), alpha = 0 the incoming ranking.

Usage::

    hybrid() % 100 >> Interpolate(my_reranker, alpha=0.25, rerank_depth=50, label="mine")
    load_reranker("ce")          # an Interpolate built from the lab model's tuned settings
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from .run import Run
from .stage import Rerank, Scorer, Stage, as_stage

NORMALISATIONS = ("zscore", "minmax")


@dataclass(frozen=True)
class Interpolate(Stage):
    reranker: object
    alpha: float = 0.5
    rerank_depth: int | None = None
    normalise: str = "zscore"
    label: str | None = None

    def __post_init__(self):
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {self.alpha}")
        if self.normalise not in NORMALISATIONS:
            raise ValueError(f"normalise must be one of {', '.join(NORMALISATIONS)}, got {self.normalise!r}")
        if self.rerank_depth is not None and (not isinstance(self.rerank_depth, int) or self.rerank_depth < 1):
            raise ValueError(f"rerank_depth must be a positive integer or None, got {self.rerank_depth!r}")
        stage = self.reranker if isinstance(self.reranker, (Rerank, Scorer)) else as_stage(self.reranker)
        if not isinstance(stage, (Rerank, Scorer)):
            raise TypeError(f"Interpolate mixes a reranker's scores; got the stage {stage.name!r}")
        object.__setattr__(self, "reranker", stage)

    @property
    def name(self) -> str:
        return self.label or f"{self.reranker.name}~{self.alpha:g}"

    def children(self):
        return (self.reranker,)

    @property
    def scorer(self):
        """The reranker whose scores are mixed in."""
        return self.reranker.reranker if isinstance(self.reranker, Rerank) else self.reranker

    def transform(self, queries, corpus, previous=None):
        if previous is None:
            raise ValueError(f"{self.name} interpolates with a previous stage: give it candidates")
        head = previous.top(self.rerank_depth) if self.rerank_depth else previous
        reranked = self.reranker.transform(queries, corpus, head)
        run = interpolate_runs(previous, reranked, self.alpha, self.normalise, name=self.name)
        return replace(run, costs=[*reranked.costs[:-1], replace(reranked.costs[-1], stage=self.name)])


@dataclass(frozen=True)
class Fuse(Stage):
    """A weighted sum of per-query normalised scores over the previous run's top ``rerank_depth``:
    the previous run's own score (``weights[0]``) and each input's (``weights[1:]``). An input that
    is a first stage contributes the score it gives the document over the whole corpus (its top
    ``input_depth``; lower for a document it did not retrieve); any other input (a reranker)
    scores the candidates. Documents below ``rerank_depth`` keep their order underneath. A convex
    combination of normalised scores, which beats rank fusion when its weights are tuned
    (Bruch, Gai & Ingber, "An Analysis of Fusion Functions for Hybrid Retrieval", TOIS 2023).

    Usage::

        hybrid() % 100 >> Fuse((BM25(), Dense()), weights=(1.0, 0.75, 0.5), rerank_depth=20)
    """

    inputs: tuple
    weights: tuple[float, ...]
    rerank_depth: int | None = 20
    input_depth: int = 1000
    normalise: str = "zscore"
    label: str | None = None
    #: the judgments its weights were chosen on ("dataset:split" or records): a choice reads judgments too
    trained_on: tuple = field(default=(), compare=False)

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(i if isinstance(i, Stage) else as_stage(i) for i in self.inputs))
        object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
        if len(self.weights) != len(self.inputs) + 1:
            raise ValueError(f"Fuse needs one weight for the previous run and one per input: {len(self.inputs) + 1} "
                             f"weights, got {len(self.weights)}")
        if self.normalise not in NORMALISATIONS:
            raise ValueError(f"normalise must be one of {', '.join(NORMALISATIONS)}, got {self.normalise!r}")
        if self.rerank_depth is not None and (not isinstance(self.rerank_depth, int) or self.rerank_depth < 1):
            raise ValueError(f"rerank_depth must be a positive integer or None, got {self.rerank_depth!r}")

    @property
    def name(self) -> str:
        return self.label or "fuse(" + ", ".join(i.name for i in self.inputs) + ")"

    def children(self):
        return self.inputs

    def transform(self, queries, corpus, previous=None):
        if previous is None:
            raise ValueError(f"{self.name} fuses scores over candidates: give it a previous stage")
        return self.combine(previous, self.signals(queries, corpus, previous))

    def signals(self, queries, corpus, previous: Run) -> list[Run]:
        """Each input's run over the candidates (what :meth:`combine` weighs; a tuner computes them once)."""
        from .stage import FirstStage

        head = previous.top(self.rerank_depth) if self.rerank_depth else previous
        return [stage.retrieve(queries, corpus, self.input_depth) if isinstance(stage, FirstStage)
                else stage.transform(queries, corpus, head) for stage in self.inputs]

    def combine(self, previous: Run, signals: list[Run], weights: tuple[float, ...] | None = None) -> Run:
        weights = self.weights if weights is None else weights
        head = previous.top(self.rerank_depth) if self.rerank_depth else previous
        scores = {}
        for qid, ranking in previous.rankings.items():
            candidates = [d for d, _ in head.rankings.get(qid, [])]
            total = dict.fromkeys(candidates, 0.0)
            for weight, run in zip(weights, [head, *signals]):
                given = dict(run.rankings.get(qid, []))
                floor = min(given.values(), default=0.0)
                for d, v in normalised({d: given.get(d, floor) for d in candidates}, self.normalise).items():
                    total[d] += weight * v
            floor = min(total.values(), default=0.0)
            for i, (d, _) in enumerate(x for x in ranking if x[0] not in total):
                total[d] = floor - 1.0 - i
            scores[qid] = total
        return Run.from_scores(scores, name=self.name, costs=[*previous.costs, *(r.costs[-1] for r in signals)])


def interpolate_runs(previous: Run, reranked: Run, alpha: float, normalise: str = "zscore",
                     name: str = "interpolated") -> Run:
    """Mix ``reranked`` scores into ``previous`` for the documents ``reranked`` holds;
    ``previous``'s other documents follow underneath in their order (see :class:`Interpolate`)."""
    scores = {}
    for qid, ranking in previous.rankings.items():
        new = normalised(dict(reranked.rankings.get(qid, [])), normalise)
        old = normalised({d: s for d, s in ranking if d in new}, normalise)
        scores[qid] = {d: alpha * new[d] + (1 - alpha) * old[d] for d in old}
        floor = min(scores[qid].values(), default=0.0)
        for i, (d, _) in enumerate(d_s for d_s in ranking if d_s[0] not in new):
            scores[qid][d] = floor - 1.0 - i
    return Run.from_scores(scores, name=name, costs=list(reranked.costs))


def normalised(scores: Mapping[str, float], how: str = "zscore") -> dict[str, float]:
    """Per-query z-score or min-max normalisation; a constant list becomes all zeros."""
    import numpy as np

    if not scores:
        return {}
    values = np.array(list(scores.values()), dtype=np.float64)
    if how == "zscore":
        spread = values.std()
        values = (values - values.mean()) / spread if spread > 0 else values * 0.0
    elif how == "minmax":
        spread = values.max() - values.min()
        values = (values - values.min()) / spread if spread > 0 else values * 0.0
    else:
        raise ValueError(f"normalise must be one of {', '.join(NORMALISATIONS)}, got {how!r}")
    return dict(zip(scores, values.tolist()))

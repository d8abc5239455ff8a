"""Running pipelines that share prefixes once, and sizing the work before it starts.

Stages compare by value, so two pipelines that begin with the same first stage (or the same
reranker at the same depth) share that computation: :class:`PrefixCache` keys each step on the
stages before it. :func:`planned_items` counts the (query, document) items the rerankers of a set
of pipelines will score, for a progress bar with an honest total.

Usage::

    cache = PrefixCache()
    run = cache.run(parse_pipeline("hybrid>>ce"), dataset)     # hybrid computed once for every pipeline
    planned_items({"a": parse_pipeline("bm25%20>>ce")}, queries=300)
"""
from __future__ import annotations

from typing import Mapping

from ..core.data import Dataset
from ..core.executor import Executor, InProcess
from ..core.progress import job_stage
from ..core.run import Run
from ..core.stage import Cutoff, FirstStage, FixedRun, Rerank, Scorer, Stage


def step_key(stage: Stage) -> object:
    """What a step computes: a reranker and the stage that reranks with it are one computation."""
    target = stage.reranker if isinstance(stage, Rerank) else stage
    try:
        hash(target)
        return target
    except TypeError:  # an unhashable user object: shared only with itself
        return ("object", id(target))


class PrefixCache:
    """Runs of pipeline prefixes, so pipelines that share a prefix compute it once."""

    def __init__(self, executor: Executor | None = None) -> None:
        self._runs: dict[tuple, Run] = {}
        self.executor = executor or InProcess()

    def steps(self, pipeline: Stage) -> list[tuple[Stage, bool]]:
        """(step, is_cut) pairs: a cut reranker is the reranker, then a cut, so ``ce`` and
        ``ce % 20`` share their scoring."""
        out = []
        for stage in pipeline.stages:
            if isinstance(stage, Cutoff) and not isinstance(stage.stage, FirstStage):
                out += [(stage.stage, False), (stage, True)]
            else:
                out.append((stage, False))
        return out

    def run(self, pipeline: Stage, dataset: Dataset) -> Run:
        run, key = None, ()
        for step, is_cut in self.steps(pipeline):
            key = key + ((("cut", step.k) if is_cut else step_key(step)),)
            if key not in self._runs:
                self._runs[key] = run.top(step.k) if is_cut else self._compute(step, dataset, run)
            run = self._runs[key]
        assert run is not None
        return run

    def _compute(self, step: Stage, dataset: Dataset, previous: Run | None) -> Run:
        with job_stage(step.name):  # the job's one bar says which step is computing
            return self.executor.transform(step, dataset.queries, dataset.corpus, previous)

    def cached(self, pipeline: Stage) -> bool:
        key = ()
        for step, is_cut in self.steps(pipeline):
            key = key + ((("cut", step.k) if is_cut else step_key(step)),)
        return key in self._runs


def planned_items(stages: Mapping[str, Stage], queries: int, candidates: int = 100) -> int:
    """A rough count of the items the rerankers of ``stages`` will score (for a progress bar)."""
    seen, total = set(), 0
    for stage in stages.values():
        depth, prefix = candidates, ()
        for step in stage.stages:
            prefix = prefix + (step_key(step),)
            if isinstance(step, FixedRun):  # a precomputed run knows its depth; 100 would overstate it
                depth = max((len(ranking) for ranking in step.run.rankings.values()), default=0)
            cut = None
            if isinstance(step, Cutoff):  # a first stage retrieves only k; any other stage is cut after it ran
                depth, cut = (step.k, None) if isinstance(step.stage, FirstStage) else (depth, step.k)
                step = step.stage
            if isinstance(step, (Rerank, Scorer)) or hasattr(step, "scorer"):
                if prefix not in seen:
                    seen.add(prefix)
                    rerank_depth = getattr(step, "rerank_depth", None)
                    total += queries * min(depth, rerank_depth or depth)
            if cut is not None:
                depth = min(depth, cut)
    return total


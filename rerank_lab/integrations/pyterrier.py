"""rerank_lab inside PyTerrier and PyTerrier inside rerank_lab (the ``pyterrier`` extra).

PyTerrier (Macdonald & Tonellotto, 2020) passes DataFrames between transformers: topics
(``qid, query``) into a retriever, results (``qid, query, docno, text, score, rank``; ranks from
0) between rerankers, and evaluates with ``pt.Experiment``. These adapters translate both ways,
so a rerank_lab stage or cascade is a ``pt.Transformer`` (it composes with PyTerrier's ``>>``,
``%`` and ``pt.Experiment``), and any PyTerrier transformer is a rerank_lab stage (in our
pipelines, ``Experiment``, cost accounting and plots).

Usage::

    import pyterrier as pt
    ce = to_pyterrier(parse_pipeline("hybrid>>ce"), dataset)
    pt.Experiment([ce], topics(dataset), qrels(dataset), [pt.measures.nDCG @ 10])
    stage = from_pyterrier(pt.apply.doc_score(lambda row: len(row["text"])), name="length")
    (BM25() % 100 >> stage)(dataset)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.data import Corpus, Dataset, Queries, Query
from ..core.run import Run
from ..core.stage import FirstStage, Stage


def _pt():
    try:
        import pyterrier as pt
    except ImportError:
        raise ImportError("PyTerrier interop needs python-terrier: `pip install 'rerank-lab[pyterrier]'`") from None
    return pt


def topics(dataset: Dataset):
    """The dataset's queries as PyTerrier topics (``qid, query``)."""
    import pandas as pd

    return pd.DataFrame([{"qid": q.query_id, "query": q.text} for q in dataset.queries.values()])


def qrels(dataset: Dataset):
    """The dataset's judgments as PyTerrier qrels (``qid, docno, label``)."""
    import pandas as pd

    return pd.DataFrame([{"qid": q, "docno": d, "label": int(g)} for q, judged in dataset.qrels.items()
                         for d, g in judged.items()])


def run_to_frame(run: Run, queries: Queries, corpus: Corpus | None = None):
    """A Run as a PyTerrier results frame: ``qid, query, docno, [text,] score, rank`` (rank from 0)."""
    import pandas as pd

    rows = []
    for qid, ranking in run.rankings.items():
        for rank, (doc_id, score) in enumerate(ranking):
            row = {"qid": qid, "query": queries[qid].text if qid in queries else "", "docno": doc_id,
                   "score": float(score), "rank": rank}
            if corpus is not None and doc_id in corpus:
                row["text"] = corpus[doc_id].full_text
            rows.append(row)
    columns = ["qid", "query", "docno"] + (["text"] if corpus is not None else []) + ["score", "rank"]
    return pd.DataFrame(rows, columns=columns)


def frame_to_run(frame, name: str = "pyterrier") -> Run:
    """A PyTerrier results frame as a Run (scores as given; a frame without scores ranks by ``rank``)."""
    scores: dict[str, dict[str, float]] = {}
    if frame is None or len(frame) == 0:
        return Run({}, name)
    value = frame["score"] if "score" in frame else -frame["rank"].astype(float)
    for qid, docno, score in zip(frame["qid"].astype(str), frame["docno"].astype(str), value):
        scores.setdefault(qid, {})[docno] = float(score)
    return Run.from_scores(scores, name=name)


def _queries(frame) -> dict[str, Query]:
    return {str(q): Query(str(q), str(t)) for q, t in zip(frame["qid"], frame["query"])}


def to_pyterrier(stage: Stage, dataset: Dataset):
    """``stage`` (any rerank_lab stage or cascade) as a ``pt.Transformer`` over ``dataset``'s corpus:
    given topics it retrieves, given results it reranks them."""
    pt = _pt()

    class RerankLabTransformer(pt.Transformer):
        def __init__(self):
            self.stage, self.dataset = stage, dataset

        def transform(self, inp):
            queries = _queries(inp)
            previous = frame_to_run(inp, "input") if "docno" in inp.columns else None
            if previous is not None:  # queries the input ranked nothing for keep an empty ranking
                previous.rankings.update({q: [] for q in queries if q not in previous.rankings})
            run = self.stage.transform(queries, self.dataset.corpus, previous)
            return run_to_frame(run, queries, self.dataset.corpus)

        def __repr__(self):
            return f"rerank_lab({self.stage.name})"

    return RerankLabTransformer()


@dataclass(frozen=True, eq=False)
class PyTerrierStage(Stage):
    """A PyTerrier transformer as a rerank_lab stage: reranks the incoming run (results frame with
    the documents' text), or retrieves from topics when it has no input. Equal only to itself."""

    transformer: object
    label: str = "pyterrier"
    first_stage: bool = field(default=False)

    @property
    def name(self) -> str:
        return self.label

    def transform(self, queries, corpus, previous=None):
        import time

        import pandas as pd

        from ..core.cost import StageCost

        if previous is None and not self.first_stage:
            raise ValueError(f"{self.name} wraps a PyTerrier reranker: give it candidates, "
                             f"or build it with from_pyterrier(..., first_stage=True)")
        start = time.perf_counter()
        if previous is None:
            frame = pd.DataFrame([{"qid": q, "query": queries[q].text} for q in queries])
        else:
            frame = run_to_frame(previous.subset(queries), queries, corpus)
        out = self.transformer.transform(frame)
        seconds = time.perf_counter() - start
        run = frame_to_run(out, self.name)
        run.rankings.update({q: [] for q in queries if q not in run.rankings})
        per_query = {q: seconds / max(len(queries), 1) for q in queries}
        cost = StageCost(self.name, seconds, sum(len(r) for r in run.rankings.values()), per_query)
        costs = [*(previous.costs if previous is not None else []), cost]
        return Run(run.rankings, self.name, costs)


def from_pyterrier(transformer, name: str = "pyterrier", first_stage: bool = False) -> Stage:
    """A PyTerrier transformer as a rerank_lab stage (``first_stage=True`` for a retriever that
    takes topics); ``% k`` and ``>>`` then work as for any stage."""
    _pt()
    if first_stage:
        return _PyTerrierRetriever(PyTerrierStage(transformer, name, True))
    return PyTerrierStage(transformer, name, False)


@dataclass(frozen=True, eq=False)
class _PyTerrierRetriever(FirstStage):
    """A PyTerrier retriever as a first stage, so ``% k`` cuts what it returns."""

    wrapped: PyTerrierStage

    @property
    def name(self) -> str:
        return self.wrapped.name

    def search(self, queries, corpus, k):
        run = self.wrapped.transform(queries, corpus, None)
        return {q: dict(r[:k]) for q, r in run.rankings.items()}

"""Are a reranker's scores probabilities of relevance? Reliability, ECE, Platt and isotonic calibration.

A reranker's score orders documents; a user who wants "keep what is likely relevant" needs a
probability. Reliability diagrams bin predictions and compare each bin's mean prediction with the
share of relevant documents in it; the expected calibration error (ECE; Naeini et al., AAAI 2015;
Guo et al., ICML 2017) is the count-weighted mean gap. Raw scores are read as probabilities
through a sigmoid (the natural reading of a 1-logit head); Platt scaling (Platt, 1999: a logistic
fit of the label on the score) and isotonic regression (Zadrozny & Elkan, KDD 2002) map scores to
probabilities, fitted on a train or dev split and measured on test.

Usage::

    scores, labels = pairs_of(run_dev, dataset_dev.qrels)
    calibrator = Calibrator("isotonic").fit(scores, labels)
    expected_calibration_error(calibrator.predict(test_scores), test_labels)
    kept, per_query = threshold(run_test, calibrator, p=0.5)
    curve = precision_coverage_curve(calibrator.predict(test_scores), test_labels)   # every threshold
    threshold_table(run_test, calibrator, qrels, (0.3, 0.5, 0.7))                    # kept, precision, per query
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from ..core.run import Run

METHODS = ("platt", "isotonic")


def pairs_of(run: Run, qrels: Mapping[str, Mapping[str, int]],
             relevant: Callable[[int], bool] = lambda grade: grade > 0) -> tuple[np.ndarray, np.ndarray]:
    """(score, label) of every (query, document) a run ranks for a judged query; unjudged
    documents count as not relevant (what a user would see)."""
    scores, labels = [], []
    for qid, ranking in run.rankings.items():
        if qid not in qrels:
            continue
        judged = qrels[qid]
        for doc, score in ranking:
            scores.append(score)
            labels.append(1.0 if relevant(judged.get(doc, 0)) else 0.0)
    return np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


@dataclass(frozen=True)
class Reliability:
    """Per bin: mean predicted probability, observed share of relevant documents, count."""

    predicted: np.ndarray
    observed: np.ndarray
    counts: np.ndarray
    edges: np.ndarray

    @property
    def ece(self) -> float:
        total = self.counts.sum()
        if total == 0:
            return 0.0
        return float(np.sum(self.counts / total * np.abs(self.observed - self.predicted)))


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> Reliability:
    """Equal-width bins over [0, 1]; empty bins are dropped."""
    probabilities = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    labels = np.asarray(labels, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    predicted, observed, counts = [], [], []
    for b in range(bins):
        mask = which == b
        if mask.any():
            predicted.append(probabilities[mask].mean())
            observed.append(labels[mask].mean())
            counts.append(mask.sum())
    return Reliability(np.array(predicted), np.array(observed), np.array(counts), edges)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    return reliability(probabilities, labels, bins).ece


@dataclass
class Calibrator:
    """Scores -> probabilities of relevance, fitted on a train/dev split (``method``: platt | isotonic)."""

    method: str = "isotonic"
    _model: object = field(default=None, repr=False)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown calibration {self.method!r}: use one of {', '.join(METHODS)}")

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> "Calibrator":
        scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
        if len(set(labels.tolist())) < 2:
            raise ValueError("calibration needs relevant and non-relevant examples in the fitting split")
        if self.method == "platt":
            from sklearn.linear_model import LogisticRegression

            self._model = LogisticRegression(C=1e6).fit(scores.reshape(-1, 1), labels)
        else:
            from sklearn.isotonic import IsotonicRegression

            self._model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, labels)
        return self

    def predict(self, scores: np.ndarray) -> np.ndarray:
        if self._model is None:
            raise ValueError("fit the calibrator on a train or dev split first")
        scores = np.asarray(scores, dtype=np.float64)
        if self.method == "platt":
            return self._model.predict_proba(scores.reshape(-1, 1))[:, 1]
        return self._model.predict(scores)

    def probabilities(self, run: Run) -> dict[str, list[tuple[str, float]]]:
        """Each ranking's (doc id, calibrated probability), in the run's order."""
        return {q: list(zip([d for d, _ in r], self.predict(np.array([s for _, s in r])).tolist())) if r else []
                for q, r in run.rankings.items()}

    def apply(self, run: Run) -> Run:
        """The same rankings with calibrated probabilities as scores (isotonic maps scores
        monotonically; Platt does when its fitted slope is positive, as for any scorer better than
        chance). Isotonic regression is a step function and ties scores: a tie keeps the run's order,
        each tied document one float step (about 1e-16) below the one before it, so that any sort by
        score gives back the run's ranking."""
        scores = {q: dict(zip([d for d, _ in pairs], _keep_order([p for _, p in pairs])))
                  for q, pairs in self.probabilities(run).items()}
        return Run.from_scores(scores, name=f"{run.name}+{self.method}", costs=run.costs)


def _keep_order(values: list[float]) -> list[float]:
    """``values`` with each run of ties made strictly decreasing by the smallest float steps (a value
    above the one before it, from a calibration that reverses the order, is left as it is)."""
    out = list(values)
    for i in range(1, len(out)):
        if values[i] <= values[i - 1] and out[i] >= out[i - 1]:
            out[i] = float(np.nextafter(out[i - 1], -np.inf))
    return out


def threshold(run: Run, calibrator: Calibrator, p: float = 0.5) -> tuple[Run, dict[str, int]]:
    """Keep the documents whose calibrated relevance is at least ``p`` (in the run's order); also how
    many each query keeps."""
    calibrated = calibrator.apply(run)
    keep = {q: {d for d, prob in pairs if prob >= p} for q, pairs in calibrator.probabilities(run).items()}
    kept = {q: {d: s for d, s in r if d in keep[q]} for q, r in calibrated.rankings.items()}
    return Run.from_scores(kept, name=f"{run.name}>={p}"), {q: len(r) for q, r in kept.items()}


@dataclass(frozen=True)
class PrecisionCoverage:
    """For each threshold (descending): the share of relevant pairs kept (``coverage``) and the
    precision of the kept pairs, over (probability, label) pairs."""

    thresholds: np.ndarray
    coverage: np.ndarray
    precision: np.ndarray
    kept: np.ndarray

    def at(self, p: float) -> tuple[float, float, float] | None:
        """(threshold, coverage, precision) at the lowest listed threshold that is still >= ``p``."""
        index = np.nonzero(self.thresholds >= p)[0]
        if not len(index):
            return None
        i = int(index[-1])
        return float(self.thresholds[i]), float(self.coverage[i]), float(self.precision[i])


def precision_coverage_curve(probabilities: np.ndarray, labels: np.ndarray) -> PrecisionCoverage:
    """Keep every pair whose probability is at least t, for every distinct t: how many relevant
    pairs are kept (as a share of all relevant pairs) and how precise the kept set is."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    order = np.argsort(-probabilities, kind="stable")
    sorted_p, sorted_l = probabilities[order], labels[order]
    hits = np.cumsum(sorted_l)
    last = np.r_[np.nonzero(np.diff(sorted_p))[0], len(sorted_p) - 1] if len(sorted_p) else np.array([], dtype=int)
    kept = last + 1
    relevant = max(float(labels.sum()), 1.0)
    return PrecisionCoverage(sorted_p[last], hits[last] / relevant, hits[last] / kept, kept)


def threshold_table(run: Run, calibrator: Calibrator, qrels: Mapping[str, Mapping[str, int]],
                    ps: tuple[float, ...] = (0.2, 0.3, 0.5, 0.7)) -> list[dict]:
    """One row per threshold p: mean documents kept per query, queries keeping none, the precision of
    the kept documents and the share of the run's relevant documents kept (grade > 0)."""
    relevant_total = sum(1 for q, r in run.rankings.items() for d, _ in r if qrels.get(q, {}).get(d, 0) > 0)
    rows = []
    for p in ps:
        kept_run, kept = threshold(run, calibrator, p)
        counts = np.array(list(kept.values()), dtype=np.float64)
        hits = [qrels.get(q, {}).get(d, 0) > 0 for q, r in kept_run.rankings.items() for d, _ in r]
        rows.append({"p": p, "queries": len(kept), "mean kept per query": round(float(counts.mean()), 2) if len(counts) else 0.0,
                     "queries keeping none": int((counts == 0).sum()),
                     "precision of kept": round(float(np.mean(hits)), 3) if hits else None,
                     "share of relevant kept": round(sum(hits) / relevant_total, 3) if relevant_total else None})
    return rows

"""Calibration: ECE by hand, Platt and isotonic fits that fix a miscalibrated scorer, thresholding."""
import numpy as np
import pytest

from rerank_lab import Run
from rerank_lab.analysis.calibration import (Calibrator, expected_calibration_error, pairs_of, reliability,
                                             sigmoid, threshold)
from rerank_lab.analysis.plots import reliability_diagram


def test_ece_by_hand():
    probs = np.array([0.1, 0.1, 0.9, 0.9])
    labels = np.array([0, 1, 1, 1])
    # bin of 0.1: observed 0.5 (gap 0.4); bin of 0.9: observed 1.0 (gap 0.1); equal weights
    assert expected_calibration_error(probs, labels) == pytest.approx(0.25)
    curve = reliability(probs, labels)
    assert curve.counts.tolist() == [2, 2] and curve.observed.tolist() == [0.5, 1.0]


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_fitted_on_one_split_fixes_another(method):
    rng = np.random.default_rng(0)

    def split(n):  # an overconfident scorer: true log-odds are a third of its scores
        scores = rng.normal(0, 4, n)
        labels = (rng.random(n) < sigmoid(scores / 3)).astype(float)
        return scores, labels

    (train_s, train_l), (test_s, test_l) = split(4000), split(4000)
    raw = expected_calibration_error(sigmoid(test_s), test_l)
    calibrated = expected_calibration_error(Calibrator(method).fit(train_s, train_l).predict(test_s), test_l)
    assert calibrated < 0.05 < raw
    with pytest.raises(ValueError, match="relevant and non-relevant"):
        Calibrator(method).fit(np.zeros(3), np.zeros(3))


def test_pairs_and_threshold_on_a_run(tmp_path):
    run = Run.from_scores({"q": {"a": 3.0, "b": 1.0, "c": -2.0}, "r": {"d": 0.5}})
    qrels = {"q": {"a": 2, "c": 0}, "r": {"d": 1}}
    scores, labels = pairs_of(run, qrels)
    assert sorted(zip(scores.tolist(), labels.tolist())) == [(-2.0, 0.0), (0.5, 1.0), (1.0, 0.0), (3.0, 1.0)]
    calibrator = Calibrator("isotonic").fit(scores, labels)
    # isotonic pools the out-of-order middle pair (0.5 relevant, 1.0 not) at 0.5 each
    kept, counts = threshold(run, calibrator, p=0.6)
    assert counts == {"q": 1, "r": 0} and kept.doc_ids("q") == ["a"]
    assert threshold(run, calibrator, p=0.5)[1] == {"q": 2, "r": 1}
    figure = reliability_diagram({"raw": reliability(sigmoid(scores), labels)}, path=tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 1000 and "ECE" in figure.axes[0].get_legend().get_texts()[1].get_text()


def test_isotonic_ties_keep_the_runs_ranking_and_its_metrics():
    from rerank_lab import evaluate

    # raw order a > z > m; isotonic pools a and z (3.0 was not relevant, 2.0 was) at 0.5: tied
    run = Run.from_scores({"q": {"a": 3.0, "z": 2.0, "m": -1.0}, "r": {"b": 2.5, "y": 0.5}})
    qrels = {"q": {"a": 0, "z": 1, "m": 0}, "r": {"b": 1, "y": 0}}
    calibrator = Calibrator("isotonic").fit(*pairs_of(run, qrels))
    probabilities = calibrator.predict(np.array([3.0, 2.0]))
    assert probabilities[0] == probabilities[1]  # a tie the calibration made
    calibrated = calibrator.apply(run)
    assert {q: calibrated.doc_ids(q) for q in run.rankings} == {q: run.doc_ids(q) for q in run.rankings}
    assert [s for _, s in calibrated["q"]][:2] == pytest.approx(probabilities.tolist(), abs=1e-12)
    reread = Run.from_scores(calibrated.to_dict())  # any sort by score gives the same ranking back
    assert reread.doc_ids("q") == ["a", "z", "m"]
    metrics = ["ndcg@10", "mrr@10", "map"]
    assert evaluate(calibrated, qrels, metrics).means == evaluate(run, qrels, metrics).means

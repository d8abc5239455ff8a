"""The tuner's rule, which picks how the lab models are used: the cheapest (setting, depth) whose mean
nDCG@10 over the tuning splits is within the tolerance of the best, each at its best alpha."""
import json

import numpy as np
import pytest

from rerank_lab.components.lab_weights import LAB_CE_DIR, LAB_COLBERT_DIR, TUNING_FILE
from rerank_lab.train.tune import choose

SETS = ["a/dev", "b/dev"]


def _rows(settings, depth, alpha, cost, a, b):
    """One row per tuning set: per-query nDCG@10 ``a`` on set a and ``b`` on set b."""
    return [{"settings": settings, "rerank_depth": depth, "alpha": alpha, "set": name, "model_seconds_per_query": cost,
             "per_query": {f"q{i}": v for i, v in enumerate(values)}} for name, values in (("a/dev", a), ("b/dev", b))]


def _grid():
    rows = []
    # truncation at depth 10: the cheapest, but 0.010 below the best (outside the tolerance)
    for alpha, shift in ((0.3, 0.0), (0.5, -0.004)):
        rows += _rows({"passages": None}, 10, alpha, 0.05, [0.60 + shift, 0.70 + shift], [0.70 + shift, 0.80 + shift])
    # maxP at depth 10: 0.0015 below the best (inside), twice as cheap as the best; alpha 0.35 and 0.7 tie,
    # and the tie goes to the alpha nearer 0.5
    for alpha in (0.7, 0.35):
        rows += _rows({"passages": "maxp"}, 10, alpha, 0.10, [0.608, 0.709], [0.709, 0.808])
    rows += _rows({"passages": "maxp"}, 10, 0.5, 0.10, [0.60, 0.70], [0.70, 0.80])
    # maxP at depth 20, alpha 0.5: the best mean
    for alpha, shift in ((0.5, 0.0), (0.8, -0.02)):
        rows += _rows({"passages": "maxp"}, 20, alpha, 0.20, [0.61 + shift, 0.71 + shift], [0.71 + shift, 0.81 + shift])
    return rows


def test_the_cheapest_row_within_the_tolerance_is_chosen_not_the_best():
    record = choose(_grid(), 0.002, SETS)
    assert record["best"]["rerank_depth"] == 20 and record["best"]["alpha"] == 0.5
    assert record["best"]["mean"] == pytest.approx(0.71)
    assert record["chosen"] == {"alpha": 0.35, "rerank_depth": 10, "settings": {"passages": "maxp"}}
    assert record["chosen_row"]["mean"] == pytest.approx(0.7085) and record["chosen_row"]["per_set"] == \
        {"a/dev": pytest.approx(0.6585), "b/dev": pytest.approx(0.7585)}
    # the paired standard error of the chosen row against the best, over the four tuning queries
    diffs = np.array([0.608 - 0.61, 0.709 - 0.71, 0.709 - 0.71, 0.808 - 0.81])
    assert record["chosen_row"]["se_vs_best"] == round(float(diffs.std(ddof=1) / 2), 4)
    assert [(r["settings"]["passages"], r["rerank_depth"]) for r in record["frontier"]] == \
        [(None, 10), ("maxp", 10), ("maxp", 20)]  # cheapest first


def test_a_tighter_tolerance_moves_the_choice_to_the_best_and_a_looser_one_to_the_cheapest():
    assert choose(_grid(), 0.001, SETS)["chosen"]["rerank_depth"] == 20
    loose = choose(_grid(), 0.02, SETS)["chosen"]
    assert loose == {"alpha": 0.3, "rerank_depth": 10, "settings": {"passages": None}}


@pytest.mark.parametrize("folder", [LAB_CE_DIR, LAB_COLBERT_DIR], ids=["lab-ce", "colbert-minilm"])
def test_the_shipped_choice_follows_the_rule_from_its_own_frontier(folder):
    record = json.loads((folder / TUNING_FILE).read_text())
    frontier = sorted(record["frontier"], key=lambda r: r["model_seconds_per_query"])
    best = max(r["mean"] for r in frontier)
    first_within = next(r for r in frontier if r["mean"] >= best - record["tolerance"])
    assert (first_within["rerank_depth"], first_within["alpha"]) == \
        (record["chosen"]["rerank_depth"], record["chosen"]["alpha"])
    assert {k: v for k, v in record["chosen"]["settings"].items() if k in first_within["settings"]} == \
        first_within["settings"]

"""One significance story: a difference is called one only when the corrected test says so; choices
take the cheapest candidate not detectably below the best; teaching examples follow a stated rule."""
import numpy as np
import pytest

from rerank_lab import Run
from rerank_lab.analysis.calibration import Calibrator, precision_coverage_curve, reliability, threshold_table
from rerank_lab.analysis.evaluate import Results
from rerank_lab.analysis.movement import shuffled, typical_queries
from rerank_lab.analysis.plots import interval_plot, pareto_plot, precision_coverage, reliability_diagram
from rerank_lab.analysis.significance import Difference, choose, detectable_effect, from_row, phrase, queries_needed
from rerank_lab.analysis.sweep import choose_under_budget


def test_no_detectable_difference_unless_the_corrected_test_says_so():
    clean = phrase(-0.0017, (-0.031, 0.027), 0.91, 105, p_holm=0.91)
    assert clean.startswith("no detectable difference on 105 queries") and "95% CI [-0.0310, +0.0270]" in clean
    memory = phrase(0.0372, (0.0153, 0.0591), 0.0003, 195, p_holm=0.0009)
    assert memory.startswith("a detectable lift on 195 queries") and "p 0.0003, Holm p 0.0009" in memory
    assert "p <0.0001" in phrase(0.05, (0.03, 0.07), 0.00001, 300)
    assert phrase(-0.05, (-0.08, -0.02), 0.002, 30, p_holm=0.01).startswith("a detectable drop on 30 queries")
    # the uncorrected interval excludes 0, the correction over the family does not: not a difference
    loose = Difference(-0.159, (-0.28, -0.04), 0.017, 30, p_holm=0.087)
    assert not loose.detected and loose.direction == "none" and loose.verdict() == "no detectable difference on 30 queries"
    # with no corrected p the interval decides, then the raw p
    assert Difference(0.02, (0.001, 0.04), None, 50).detected
    assert not Difference(0.02, (-0.001, 0.04), None, 50).detected
    assert Difference(0.02, None, 0.01, 50).detected and not Difference(0.02, None, 0.2, 50).detected


def test_the_detectable_effect_has_the_power_it_claims_and_the_sample_size_inverts_it():
    rng = np.random.default_rng(7)
    from scipy import stats

    for queries, sd in ((12, 0.2), (104, 0.109)):
        effect = detectable_effect(sd, queries)
        draws = rng.normal(effect, sd, size=(20_000, queries))
        found = (stats.ttest_1samp(draws, 0.0, axis=1).pvalue < 0.05).mean()
        assert abs(found - 0.8) < 0.015, (queries, effect, found)  # 20,000 draws: standard error 0.003
        assert queries_needed(effect, sd) == queries  # the smallest sample with that power is this one
        assert detectable_effect(sd, queries, power=0.9) > effect > detectable_effect(sd, 4 * queries)
    # the spread comes back from the interval, so a table row states its own power
    d = Difference(0.0182, (-0.0030, 0.0394), 0.091, 104)
    assert abs(d.spread - 0.109) < 0.001
    sentence = d.power_sentence()
    assert "on 104 queries" in sentence and "80% power" in sentence and "would need about" in sentence
    assert "would need" not in Difference(0.05, (0.02, 0.08), 0.001, 104).power_sentence()  # detected: nothing to ask
    with pytest.raises(ValueError, match="positive"):
        queries_needed(0.0, 0.1)
    with pytest.raises(ValueError, match="power"):
        detectable_effect(0.1, 30, power=1.0)


def test_rows_of_an_experiment_table_give_their_differences():
    row = {"name": "hybrid>>ce", "queries": 300, "delta_ndcg@10": 0.0236, "ci95": [0.0064, 0.0407], "p_raw": 0.0045,
           "p_holm": 0.022, "vs_input_ndcg@10": 0.0236, "vs_input_ci95": [0.0064, 0.0407], "vs_input_p_holm": 0.013,
           "clean_queries": 105, "clean_delta_vs_input": -0.0017, "clean_ci95": [-0.031, 0.027], "clean_p": 0.91,
           "clean_p_raw": 0.91, "contaminated_queries": 195, "contaminated_delta_vs_input": 0.0372,
           "contaminated_ci95": [0.0153, 0.0591], "contaminated_p": 0.0009, "contaminated_p_raw": 0.0005}
    assert from_row(row).detected and from_row(row).p_holm == 0.022 and from_row(row).queries == 300
    assert from_row(row, against="input").p_holm == 0.013
    clean, dirty = from_row(row, against="clean"), from_row(row, against="contaminated")
    assert clean.queries == 105 and not clean.detected and clean.p_holm is None  # one pipeline: p not corrected
    assert dirty.queries == 195 and dirty.detected and dirty.p_holm == 0.0009
    assert from_row({"name": "hybrid", "queries": 300, "delta_ndcg@10": None}) is None
    with pytest.raises(ValueError, match="against must be one of"):
        from_row(row, against="test")


class FakeExperiment:
    """The parts of an Experiment that choose() reads, with per-query values set by hand."""

    metrics = ["ndcg@10"]
    test = "t-test"

    def __init__(self, values: dict[str, np.ndarray], costs: dict[str, float]):
        self.results = {n: Results(n, {"ndcg@10": float(v.mean())}, {"ndcg@10": {f"q{i}": float(x) for i, x in enumerate(v)}})
                        for n, v in values.items()}
        self.costs = costs

    def table(self):
        return [{"name": n, "ndcg@10": r.means["ndcg@10"], "model_median_ms": self.costs[n],
                 "model_p95_ms": self.costs[n]} for n, r in self.results.items()]


def _experiment():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.9, 60)
    return FakeExperiment({
        "deep": base + 0.010,                                   # the best mean, the most expensive
        "middle": base + rng.normal(0, 0.05, 60),               # noise around it
        "shallow": base - 0.20 + rng.normal(0, 0.01, 60),       # clearly worse, the cheapest
    }, {"deep": 100.0, "middle": 10.0, "shallow": 1.0})


def test_choose_takes_the_cheapest_candidate_not_detectably_below_the_best():
    exp = _experiment()
    choice = choose(exp, ["deep", "middle", "shallow"])
    assert choice.best == "deep" and choice.pick == "middle"
    assert not choice.against_best["middle"].detected and choice.against_best["shallow"].direction == "lower"
    assert "Holm over the 2 comparisons" in choice.family
    assert "cheapest candidate not detectably below the best-scoring deep" in choice.sentence()
    alone = choose(exp, ["deep", "shallow"])  # every cheaper candidate detectably lower: the best is the pick
    assert alone.pick == "deep" and "every cheaper candidate scores detectably lower" in alone.sentence()
    with pytest.raises(KeyError, match="not pipelines"):
        choose(exp, ["deep", "nope"])


def test_a_latency_budget_pick_is_not_won_by_noise():
    exp = _experiment()
    assert choose_under_budget(exp, 0.5).sentence() == "p95 ≤ 0.5 ms: nothing fits."
    assert "only **shallow** fits" in choose_under_budget(exp, 1).sentence()
    roomy = choose_under_budget(exp, 1000)
    assert roomy.fitting == ("deep", "middle", "shallow") and roomy.choice.pick == "middle"


def test_latency_budgets_share_one_correction_so_a_larger_budget_never_undoes_a_verdict():
    base = np.random.default_rng(3).uniform(0.3, 0.9, 60)
    wobble = np.resize([1.0, -1.0], 60)  # per-query differences of a set spread: paired t about 2.3 for cheap
    slow = {f"slow{i}": base - 0.05 + 0.4 * np.roll(wobble, i) for i in range(3)}  # costly, noisy, never the best
    exp = FakeExperiment({"best": base, "cheap": base - 0.03 + 0.1 * wobble, **slow},
                         {"best": 10.0, "cheap": 1.0, **{n: 100.0 * (i + 1) for i, n in enumerate(slow)}})
    alone = choose(exp, ["best", "cheap"])  # corrected over its own single comparison, the drop is detected ...
    assert alone.against_best["cheap"].detected and alone.pick == "best"
    assert choose(exp, ["best", "cheap", *slow]).pick == "cheap"  # ... and over four comparisons it is not
    small, large = choose_under_budget(exp, 10), choose_under_budget(exp, 1000)
    assert small.fitting == ("best", "cheap") and len(large.fitting) == 5
    # both budgets correct over every pipeline besides the best: one verdict, one pick
    assert small.choice.against_best["cheap"].p_holm == large.choice.against_best["cheap"].p_holm
    assert small.choice.pick == large.choice.pick == "cheap"
    assert "Holm over the 4 comparisons" in small.choice.family and "3 not among the candidates" in small.choice.family


def test_the_typical_examples_are_the_median_rise_and_the_median_fall_among_the_given_queries():
    qrels = {f"q{i}": {"rel": 1} for i in range(6)}
    before = Run.from_scores({f"q{i}": {"rel": 1.0, "x": 2.0, "y": 3.0, "z": 4.0} for i in range(6)})  # rel at rank 4
    after = Run.from_scores({  # rel moves to rank 1, 2, 3 (helped), stays (q3), and falls out of the top 4 (hurt)
        "q0": {"rel": 9.0, "x": 2.0}, "q1": {"rel": 3.5, "x": 2.0, "y": 4.0}, "q2": {"rel": 2.5, "x": 2.0, "y": 3.0, "z": 4.0},
        "q3": {"rel": 1.0, "x": 2.0, "y": 3.0, "z": 4.0}, "q4": {"rel": 0.0, "x": 2.0, "y": 3.0, "z": 4.0, "w": 5.0},
        "q5": {"rel": 0.0, "x": 2.0, "y": 3.0, "z": 4.0, "w": 5.0, "v": 6.0}})
    typical = typical_queries(before, after, qrels)
    assert (typical.n_helped, typical.n_hurt, typical.n_unchanged) == (3, 2, 1)
    assert typical.helped.query_id == "q1" and typical.helped.delta > 0  # the middle of three rises
    assert typical.hurt.query_id == "q4" and typical.hurt.delta < 0     # of two falls, the smaller
    only = typical_queries(before, after, qrels, query_ids=["q0", "q3"])  # e.g. the clean queries only
    assert only.helped.query_id == "q0" and only.hurt is None and "2 queries considered" in only.rule


def test_shuffled_is_a_seeded_permutation_of_each_querys_candidates():
    run = Run.from_scores({"q": {f"d{i}": float(10 - i) for i in range(10)}})
    one, again, other = shuffled(run, 1), shuffled(run, 1), shuffled(run, 2)
    assert one.doc_ids("q") == again.doc_ids("q") != other.doc_ids("q")
    assert sorted(one.doc_ids("q")) == sorted(run.doc_ids("q")) and one.doc_ids("q") != run.doc_ids("q")


def test_precision_coverage_and_thresholds_count_what_is_kept():
    curve = precision_coverage_curve(np.array([0.9, 0.8, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 1, 0]))
    assert curve.thresholds.tolist() == [0.9, 0.8, 0.3, 0.1] and curve.kept.tolist() == [1, 3, 4, 5]
    assert curve.coverage.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])
    assert curve.precision.tolist() == pytest.approx([1.0, 2 / 3, 0.75, 0.6])
    assert curve.at(0.5) == pytest.approx((0.8, 2 / 3, 2 / 3)) and curve.at(0.95) is None
    run = Run.from_scores({"a": {"d1": 3.0, "d2": 1.0}, "b": {"d3": -2.0}})
    calibrator = Calibrator("platt").fit(np.array([3.0, 1.0, -2.0, -1.0]), np.array([1, 1, 0, 0]))
    rows = threshold_table(run, calibrator, {"a": {"d1": 1, "d2": 1}, "b": {"d3": 0}}, (0.5,))
    assert rows == [{"p": 0.5, "queries": 2, "mean kept per query": 1.0, "queries keeping none": 1,
                     "precision of kept": 1.0, "share of relevant kept": 1.0}]
    assert isinstance(rows[0]["queries keeping none"], int)  # "1 query", never "1.0 queries"


def test_figures_show_bin_counts_intervals_and_significance_marks(tmp_path):
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 500)
    figure = reliability_diagram({"model": reliability(p, (rng.uniform(0, 1, 500) < p).astype(float))})
    counts = reliability(p, np.zeros(500)).counts
    texts = {t.get_text() for t in figure.axes[0].texts}
    assert {str(int(n)) for n in counts} <= texts and len(figure.axes) == 2  # counts on the points, and a panel
    precision_coverage({"model": precision_coverage_curve(p, (p > 0.5).astype(float))}, path=tmp_path / "pc.png")
    figure = interval_plot({"a": Difference(0.03, (0.01, 0.05), 0.001, 40, 0.002),
                            "b": Difference(0.01, (-0.02, 0.04), 0.4, 40, 0.4)}, reference="base")
    assert "40 queries" in figure.axes[0].get_title()
    rows = [{"name": "hybrid", "ndcg@10": 0.7, "delta_ndcg@10": None, "p_holm": None, "model_median_ms": 1.0},
            {"name": "hybrid>>ce", "ndcg@10": 0.72, "delta_ndcg@10": 0.02, "p_holm": 0.3, "model_median_ms": 100.0}]
    figure = pareto_plot(rows, latencies=("model_median_ms",))
    labels = {t.get_text() for t in figure.axes[0].texts}
    assert "hybrid>>ce n.s." in labels and "hybrid" in labels and "against hybrid" in figure._suptitle.get_text()


def test_the_teaching_memoriser_lifts_scifact_test_and_is_flagged_as_memory(scifact):
    from rerank_lab import BM25, Experiment, Interpolate
    from rerank_lab.analysis.contamination import split_rows
    from rerank_lab.analysis.memorisation import TrainingPositives

    first = BM25() % 30
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exp = Experiment(scifact, {"bm25": first, "bm25>>memoriser": first >> Interpolate(TrainingPositives("scifact"), 0.2)},
                         baseline="bm25", progress=False).run()
    row = {r["name"]: r for r in exp.table()}["bm25>>memoriser"]
    assert row["delta_ndcg@10"] > 0 and row["memory"] and row["trained_on"] == ["scifact:train"]
    (line,) = split_rows(exp)
    assert line["pipeline"] == "bm25>>memoriser" and line["reading"].startswith("⚠ memory")
    assert line["clean queries"] + line["contaminated queries"] == len(scifact.qrels)
    assert from_row(row, against="contaminated").detected and not from_row(row, against="clean").detected

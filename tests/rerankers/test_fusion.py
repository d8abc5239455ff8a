"""The "fusion" reranker: its weights come from the tuner's record, and the tuner reads only tuning splits."""
from rerank_lab import load_reranker
from rerank_lab.core.interpolate import Fuse
from rerank_lab.core.provenance import provenance
from rerank_lab.rerankers.fusion import zero_shot_fusion
from rerank_lab.train.tune import TuningSet, tune_fusion


def test_the_registered_fusion_uses_the_committed_tuning_and_names_what_it_read():
    from rerank_lab.components.lab_weights import LAB_FUSION_DIR, read_tuning

    fusion = load_reranker("fusion")
    tuning = read_tuning(LAB_FUSION_DIR)
    assert isinstance(fusion, Fuse) and list(fusion.weights) == tuning.scorer_settings["weights"]
    assert fusion.rerank_depth == tuning.rerank_depth
    records = provenance(fusion)
    assert records and all(r.role == "tune" and r.split in ("train", "dev") for r in records)


def test_the_tuner_picks_the_weights_with_the_best_tuning_mean(scifact):
    from rerank_lab import hybrid

    sample = scifact.sample(n_queries=25, seed=4)  # any judged set exercises the rule; the lab tunes on train/dev
    tset = TuningSet("scifact", "sample", sample, (hybrid() % 100)(sample))
    grid = ((1.0, 0.0, 0.0), (1.0, 1.0, 0.0), (0.0, 0.0, 1.0))
    record = tune_fusion([tset], depths=(20,), grid=grid)
    means = {tuple(r["settings"]["weights"]): r["mean"] for r in record["frontier"]}
    fuse = zero_shot_fusion(weights=grid[0], rerank_depth=20)
    signals = fuse.signals(sample.queries, sample.corpus, tset.candidates)
    from rerank_lab.analysis.evaluate import evaluate

    for weights in grid:
        run = fuse.combine(tset.candidates, signals, weights)
        assert means[weights] == round(evaluate(run, sample.qrels, ["ndcg@10"])["ndcg@10"], 4)
    assert tuple(record["chosen"]["settings"]["weights"]) in grid
    assert record["best"]["mean"] == max(r["mean"] for r in record["frontier"])

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


def test_ce_fusion_carries_the_cross_encoders_training_so_evaluation_splits_by_it():
    from rerank_lab.components.lab_weights import LAB_CE_DIR, LAB_CE_FUSION_DIR, read_tuning
    from rerank_lab.components.provenance import read_provenance

    fused = load_reranker("ce-fusion")
    tuning = read_tuning(LAB_CE_FUSION_DIR)
    assert isinstance(fused, Fuse) and list(fused.weights) == tuning.scorer_settings["weights"]
    assert len(fused.weights) == 4  # hybrid, BM25, dense, the cross-encoder
    records = set(provenance(fused))
    assert set(read_provenance(LAB_CE_DIR)) <= records  # what the cross-encoder trained on
    assert set(read_provenance(LAB_CE_FUSION_DIR)) <= records  # what chose the weights
    trained = {(r.dataset, r.split) for r in records if r.role == "train"}
    assert ("scifact", "train") in trained


def test_a_zero_weight_for_the_cross_encoder_is_plain_fusion(scifact):
    """The tuner may leave the cross-encoder out (weight 0); then the fused run is zero-shot fusion's."""
    from rerank_lab import hybrid
    from rerank_lab.rerankers.fusion import lab_ce_fusion

    sample = scifact.sample(n_queries=6, seed=2)
    candidates = (hybrid() % 100)(sample)
    with_ce = lab_ce_fusion(weights=(1.0, 0.75, 0.5, 0.0), rerank_depth=10)
    plain = zero_shot_fusion(weights=(1.0, 0.75, 0.5), rerank_depth=10)
    signals = with_ce.signals(sample.queries, sample.corpus, candidates)
    assert len(signals) == 3 and all(set(s.rankings) == set(candidates.rankings) for s in signals)
    for qid in candidates.rankings:
        assert with_ce.combine(candidates, signals).doc_ids(qid) == plain.combine(candidates, signals[:2]).doc_ids(qid)
    moved = lab_ce_fusion(weights=(1.0, 0.75, 0.5, 3.0), rerank_depth=10).combine(candidates, signals)
    assert any(moved.doc_ids(q, 10) != plain.combine(candidates, signals[:2]).doc_ids(q, 10) for q in candidates.rankings)


def test_ce_fusion_chooses_on_queries_the_cross_encoder_never_read_nor_saw_positives_of():
    from rerank_lab.analysis.contamination import contamination
    from rerank_lab.components.lab_weights import LAB_CE_DIR
    from rerank_lab.components.provenance import read_provenance
    from rerank_lab.train.tune import clean_tuning_set

    records = read_provenance(LAB_CE_DIR)
    tset = clean_tuning_set(LAB_CE_DIR)
    trained_ids = {q for r in records if r.role == "train" and r.dataset == "scifact" for q in r.query_ids}
    assert tset.dataset.queries and not set(tset.dataset.queries) & trained_ids
    split = contamination(tset.dataset, [r for r in records if r.role == "train"])
    assert set(split.clean) == set(tset.dataset.queries) and not split.contaminated
    assert set(tset.candidates.rankings) == set(tset.dataset.queries)

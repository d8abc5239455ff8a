"""Training the lab ColBERT with colbert-ai in-process: two steps from a PCA projection, the identity
initialisation (zero-shot MaxSim over the body's tokens), and ensemble-teacher distillation."""
from __future__ import annotations

import faulthandler
import math

import numpy as np
import pytest
import torch

from rerank_lab.rerankers.colbert import ColBERT

DOCS = ["Scurvy is caused by a lack of vitamin C.", "Dogs bark, loudly!", "Cats purr when they are content."]


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path / "cache"))


def test_colbert_ai_training_runs_two_steps_in_process(tmp_path):
    from rerank_lab.train.colbert import ColBERTTrainConfig, train_colbert

    faulthandler.dump_traceback_later(240, exit=True)  # a DDP hang fails the test instead of the suite
    try:
        out = train_colbert(ColBERTTrainConfig(output=str(tmp_path / "toy-colbert"), datasets=("toy",), split="test",
                                               allow_test=True, steps=2, batch_size=2, nway=2, dim=32, doc_maxlen=48,
                                               infer_doc_maxlen=64, pca_docs=8, init="pca", teacher="none",
                                               retriever="bm25"))
    finally:
        faulthandler.cancel_dump_traceback_later()
    reranker = ColBERT(out, cache=False)
    assert reranker.config.dim == 32 and reranker.config.doc_maxlen == 64
    scores = reranker.score("I forgot my password", ["reset your password here", "opening hours"])
    assert all(math.isfinite(s) for s in scores)


def test_identity_init_scores_maxsim_over_the_body_tokens(tmp_path):
    """Step 0 of the lab recipe: a 384-d identity projection, so each document token embedding
    is the body's own normalised hidden state (what zero-shot MaxSim uses)."""
    from transformers import AutoModel

    from rerank_lab.components.models import MINILM, resolve_model
    from rerank_lab.train.colbert import ColBERTTrainConfig, build_initial_checkpoint

    with pytest.raises(ValueError, match="identity"):
        build_initial_checkpoint(ColBERTTrainConfig(dim=32, init="identity"), tmp_path / "bad", DOCS)
    folder = build_initial_checkpoint(ColBERTTrainConfig(dim=384, init="identity", doc_maxlen=64), tmp_path / "id", DOCS)
    reranker = ColBERT(folder, bf16=False, cache=False)
    ck = reranker.loaded
    ids, mask = ck.doc_tokenizer.tensorize([DOCS[0]])
    with torch.no_grad():
        ours = ck.doc(ids, mask, keep_dims=True)[0]
        body = AutoModel.from_pretrained(resolve_model(MINILM)).eval()
        hidden = torch.nn.functional.normalize(body(input_ids=ids, attention_mask=mask)[0], dim=-1)[0]
    keep = torch.tensor(ck.mask(ids, skiplist=ck.skiplist)[0])
    assert torch.allclose(ours[keep], hidden[keep], atol=1e-4)


def test_ensemble_teacher_distillation_runs_on_the_toy_set(tmp_path):
    from rerank_lab.data import load_dataset
    from rerank_lab.train.colbert import ColBERTTrainConfig, ensemble_teacher, train_colbert
    from rerank_lab.train.negatives import mine_groups

    cfg = ColBERTTrainConfig(output=str(tmp_path / "distilled"), datasets=("toy",), split="test", allow_test=True,
                             steps=2, batch_size=2, nway=3, dim=384, init="identity", teacher="ensemble",
                             doc_maxlen=48, infer_doc_maxlen=64)
    toy = load_dataset("toy")
    group = mine_groups(toy, n_negatives=2, depth=10, skip_top=0, allow_test=True)[0]
    logits = ensemble_teacher(cfg)(group, [toy.corpus[d].full_text for d in [group.positive, *group.negatives]])
    assert len(logits) == 3 and int(np.argmax(logits)) == 0  # label bonus puts the judged positive first
    faulthandler.dump_traceback_later(240, exit=True)
    try:
        out = train_colbert(cfg)
    finally:
        faulthandler.cancel_dump_traceback_later()
    scores = ColBERT(out, cache=False).score("I forgot my password", ["reset your password here", "opening hours"])
    assert all(math.isfinite(s) for s in scores)


def test_colbert_ablation_adds_a_longer_trained_checkpoint_at_its_own_tuning(tmp_path):
    """The ablation's ``further`` rows: a checkpoint of the recipe mixed at its *own* tuned alpha and
    depth (not the lab ColBERT's), its tuning-split score listed beside the committed model's, and a
    takeaway line per mixed row computed from the table."""
    import json

    from rerank_lab.train.colbert import ColBERTTrainConfig, train_colbert
    from rerank_lab.train.transfer import colbert_ablation

    faulthandler.dump_traceback_later(240, exit=True)
    try:
        out = train_colbert(ColBERTTrainConfig(output=str(tmp_path / "further"), datasets=("toy",), split="test",
                                               allow_test=True, steps=2, batch_size=2, nway=2, dim=384,
                                               init="identity", teacher="none", retriever="bm25", doc_maxlen=48,
                                               infer_doc_maxlen=64))
    finally:
        faulthandler.cancel_dump_traceback_later()
    # what the tuner writes; its scores stand in for a tuning run on the train splits
    (out / "tuning.json").write_text(json.dumps({"chosen": {"alpha": 0.3, "rerank_depth": 5, "settings": {}},
                                                 "chosen_row": {"mean": 0.5, "per_set": {"toy/test": 0.5}}}))
    text = colbert_ablation("toy", further=[out])
    assert "lab ColBERT recipe, 2 steps, mixed (alpha 0.3, top 5)" in text
    assert "lab ColBERT recipe, 2 steps, pure (top 5)" in text
    assert "- lab ColBERT recipe, 2 steps: mean 0.5000 (toy/test 0.5000)" in text
    assert "- lab ColBERT: mean " in text and "scifact/train" in text  # the committed model's tuning score
    clean = {cells[1].strip(): int(cells[3]) for cells in (line.split("|") for line in text.splitlines())
             if len(cells) > 4 and cells[3].strip().isdigit()}
    # split by its own provenance too: it trained on toy/test, so fewer toy queries are clean for it
    assert clean["lab ColBERT recipe, 2 steps, mixed (alpha 0.3, top 5)"] < clean["lab ColBERT, mixed (alpha 0.5, top 20)"]
    takeaway = text.split("**Takeaway (computed from the table):**")[1]
    lines = [line for line in takeaway.splitlines() if line.startswith("- ")]
    power = [line for line in lines if "the largest clean difference" in line]
    assert len(lines) - len(power) == 3  # one per mixed row with a split
    # a mixed row whose interval holds 0 gets one line on what the clean queries could have detected
    undetected = any("no detectable difference on" in line for line in lines if line not in power)
    assert len(power) == int(undetected) and all("with 80% power" in line for line in power)


def test_label_free_colbert_reads_no_judgment_and_trains_on_bodies(tmp_path):
    """``supervision="title"``: titles as queries, bodies as positives (the title is no shortcut),
    no query of the split trained, and a provenance that says the corpus was read, not its labels."""
    import json

    from rerank_lab.core.provenance import TrainingData
    from rerank_lab.data import load_dataset
    from rerank_lab.train.colbert import ColBERTTrainConfig, train_colbert, training_examples

    cfg = ColBERTTrainConfig(output=str(tmp_path / "title"), datasets=("toy",), split="test", allow_test=True,
                             steps=2, batch_size=2, nway=3, dim=384, init="identity", teacher="ensemble",
                             retriever="bm25", doc_maxlen=48, infer_doc_maxlen=64, supervision="title")
    toy = load_dataset("toy")
    examples, queries, collection, stats = training_examples(cfg)
    assert examples and all(q.startswith("toy:title-") for q in queries)
    assert set(queries.values()) <= {doc.title for doc in toy.corpus.values()}
    titles = {doc.title for doc in toy.corpus.values()}
    for example in examples:  # [qid, [pid, teacher score], ...]: the positive first
        positive = collection[example[1][0]]
        assert positive in {doc.text for doc in toy.corpus.values()} and positive not in titles
    assert stats["toy"]["trained_query_ids"] is None
    with pytest.raises(ValueError, match="unknown supervision"):
        training_examples(ColBERTTrainConfig(datasets=("toy",), split="test", allow_test=True, supervision="llm"))
    faulthandler.dump_traceback_later(240, exit=True)
    try:
        out = train_colbert(cfg)
    finally:
        faulthandler.cancel_dump_traceback_later()
    records = [TrainingData.coerce(r) for r in json.loads((out / "provenance.json").read_text())["trained_on"]]
    assert records and all(not r.labels for r in records if r.role == "train")
    assert [r.split for r in records if r.role == "train"] == ["corpus"]

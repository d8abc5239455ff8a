"""ColBERT late interaction: MaxSim arithmetic, padding, the token cache, explanations, projections
(training: tests/train/test_colbert.py). Tiny inputs; the MiniLM body comes from the packaged model."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from rerank_lab.rerankers import REGISTRY, load_reranker
from rerank_lab.rerankers import colbert as colbert_module
from rerank_lab.rerankers.colbert import ColBERT
from rerank_lab.rerankers.late_interaction import Projected, maxsim, pad_documents, pca_projection

DOCS = ["Scurvy is caused by a lack of vitamin C.", "Dogs bark, loudly!", "Cats purr when they are content."]
@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """An untrained lab ColBERT (MiniLM + PCA projection, dim 32): enough to test the plumbing."""
    from rerank_lab.train.colbert import ColBERTTrainConfig, build_initial_checkpoint

    folder = tmp_path_factory.mktemp("ckpt") / "colbert-tiny"
    return str(build_initial_checkpoint(ColBERTTrainConfig(dim=32, doc_maxlen=64, init="pca"), folder, DOCS * 4))


def test_maxsim_equals_hand_computation():
    Q = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    D = [np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.8, 0.6]])]
    scores = maxsim(Q, *pad_documents(D)).tolist()
    # doc 0: q0 best 1.0 (d0); q1 best max(0.6, 0.8) = 0.8  -> 1.8
    # doc 1: q0 0.8; q1 0.6*0.8 + 0.8*0.6 = 0.96            -> 1.76
    assert scores == pytest.approx([1.8, 1.76])


def test_maxsim_matches_colbert_ai_and_padding_never_contributes():
    from colbert.modeling.colbert import colbert_score

    torch.manual_seed(0)
    Q = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    docs = [torch.nn.functional.normalize(torch.randn(n, 8), dim=-1) for n in (3, 7, 1)]
    D, mask = pad_documents(docs)
    ours = maxsim(Q, D, mask)
    theirs = colbert_score(Q.unsqueeze(0), D.clone(), mask.unsqueeze(-1))
    assert torch.allclose(ours, theirs, atol=1e-6)
    # padding full of large vectors changes nothing: masked positions are never a max
    D_noisy = D.clone()
    D_noisy[~mask] = 100.0
    assert torch.allclose(maxsim(Q, D_noisy, mask), ours)
    # each document alone (no padding at all) scores the same as in the padded batch
    alone = [maxsim(Q, d.unsqueeze(0), torch.ones(1, len(d), dtype=torch.bool)).item() for d in docs]
    assert ours.tolist() == pytest.approx(alone, abs=1e-6)


def test_colbert_padding_tokens_never_contribute(tiny_checkpoint):
    reranker = ColBERT(tiny_checkpoint, bf16=False, cache=False)
    short = DOCS[1]
    alone = reranker.score("why do dogs bark?", [short])[0]
    batched = reranker.score("why do dogs bark?", [short, DOCS[0] * 5])[0]  # padded to the long one
    assert batched == pytest.approx(alone, abs=1e-3)
    (embeddings,) = reranker.encode_documents([short])
    n_tokens = len(reranker.loaded.doc_tokenizer.tensorize([short])[0][0])
    assert embeddings.shape[0] < n_tokens  # punctuation dropped, no [PAD] rows stored


def test_cache_hit_and_reload_from_disk(tiny_checkpoint):
    first = ColBERT(tiny_checkpoint, bf16=False)
    cold = first.score("what causes scurvy?", DOCS)
    counts = {k: v for k, v in first.counters.items() if not k.endswith("seconds")}
    assert counts == {"query_encodings": 1, "cache_misses": 3, "docs_encoded": 3}
    warm = first.score("what causes scurvy?", DOCS)
    assert warm == cold and first.counters["cache_hits"] == 3 and first.counters["docs_encoded"] == 3
    assert first.counters["saved_seconds"] > 0  # the hits report the encoding time they saved
    first.flush()
    second = ColBERT(tiny_checkpoint, bf16=False)  # a new process would see the same shards
    assert second.score("what causes scurvy?", DOCS) == cold
    assert second.counters.get("cache_misses", 0) == 0 and second.counters["cache_hits"] == 3


def test_explanation_adds_up_to_the_score(tiny_checkpoint):
    reranker = ColBERT(tiny_checkpoint, bf16=False)
    explanation = reranker.explain("what causes scurvy?", DOCS[0])
    assert explanation.similarity.shape == (len(explanation.query_tokens), len(explanation.doc_tokens))
    assert explanation.contributions.sum() == pytest.approx(explanation.score)
    assert explanation.score == pytest.approx(reranker.score("what causes scurvy?", [DOCS[0]])[0], abs=1e-3)
    assert "[Q]" in explanation.query_tokens and "[D]" in explanation.doc_tokens
    assert "[PAD]" not in explanation.doc_tokens and "," not in explanation.doc_tokens
    from rerank_lab.analysis.plots import plot_explanation

    assert plot_explanation(explanation).axes


def test_zero_shot_maxsim_ranks_the_obvious_document_first():
    reranker = load_reranker("maxsim")
    scores = reranker.score("what causes scurvy?", DOCS)
    assert int(np.argmax(scores)) == 0 and reranker.counters["docs_encoded"] == 3
    explanation = reranker.explain("what causes scurvy?", DOCS[0])
    assert explanation.score == pytest.approx(scores[0], abs=1e-3)


def test_registry_names_and_missing_weights_message(monkeypatch, tmp_path):
    assert {"colbert", "maxsim"} <= set(REGISTRY)
    monkeypatch.setattr(colbert_module, "LAB_COLBERT_DIR", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="python -m rerank_lab.train.colbert"):
        load_reranker("colbert")


def test_pipeline_with_first_stage_interpolation(tiny_checkpoint):
    from rerank_lab.data import load_dataset
    from rerank_lab.first_stage import BM25

    toy = load_dataset("toy")
    first = (BM25() % 5)(toy)
    reranker = colbert_module.colbert(tiny_checkpoint, bf16=False)
    assert isinstance(reranker, ColBERT)  # a given checkpoint is plain MaxSim
    from rerank_lab import Interpolate

    run = (BM25() % 5 >> Interpolate(reranker, alpha=0.0))(toy)
    assert {q: first.doc_ids(q) for q in first.rankings} == {q: run.doc_ids(q) for q in run.rankings}
    mixed = Interpolate(reranker, alpha=0.5).transform(toy.queries, toy.corpus, first)
    assert set(mixed.rankings) == set(first.rankings) and mixed.costs[-1].counters["query_encodings"] >= 1
    lab = load_reranker("colbert")  # the lab model comes mixed with its first stage, as tuned
    assert isinstance(lab, Interpolate) and 0 < lab.alpha < 1


def test_without_query_augmentation_only_real_query_tokens_score(tiny_checkpoint):
    from colbert.modeling.tokenization import QueryTokenizer

    from rerank_lab.components.colbert_ai import query_augmentation

    query = "forgot password"
    plain = ColBERT(tiny_checkpoint, bf16=False, cache=False, augment_queries=False)
    augmented = ColBERT(tiny_checkpoint, bf16=False, cache=False, augment_queries=True)
    ids, mask = plain.loaded.query_tokenizer.tensorize([query])  # outside the block: colbert-ai's own
    real = int(mask.sum())
    assert real < ids.shape[1]  # the query leaves slots to fill
    Q_plain, Q_aug = plain.encode_query(query), augmented.encode_query(query)
    assert torch.count_nonzero(Q_plain[real:]) == 0 and torch.count_nonzero(Q_aug[real:]) > 0
    # with no [MASK] slots the score is MaxSim over the query's own tokens
    D = torch.from_numpy(plain.encode_documents([DOCS[0]])[0])
    by_hand = (Q_plain[:real] @ D.T).max(dim=1).values.sum().item()
    assert plain.score(query, [DOCS[0]])[0] == pytest.approx(by_hand, abs=1e-3)  # fp16 storage
    # the one switch (inference and training) patches colbert-ai's tokenizer only inside the block
    original = QueryTokenizer.tensorize
    with query_augmentation(False):
        assert QueryTokenizer.tensorize is not original
    assert QueryTokenizer.tensorize is original
    # the heatmap leaves padding out
    q_tokens, _, Q, _ = plain.tokens(query, DOCS[0])
    assert len(q_tokens) == Q.shape[0] == real


def test_projection_ablation_reuses_the_cached_encodings(tiny_checkpoint):
    reranker = ColBERT(tiny_checkpoint, bf16=False)
    full = reranker.score("what causes scurvy?", DOCS)
    embeddings = reranker.document_embeddings(DOCS)
    identity = Projected(reranker, np.eye(32, dtype=np.float32))
    # the identity only re-normalises the fp16-stored vectors
    assert identity.score("what causes scurvy?", DOCS) == pytest.approx(full, rel=1e-3)
    low = Projected(reranker, pca_projection(embeddings, 8))
    encoded = reranker.counters["docs_encoded"]
    scores = low.score("what causes scurvy?", DOCS)
    assert low.counters["docs_encoded"] == encoded and scores != pytest.approx(full, abs=1e-3)
    assert low.explain("what causes scurvy?", DOCS[0]).score == pytest.approx(scores[0], abs=1e-2)

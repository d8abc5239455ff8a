"""Recipes that cannot lean on document priors: the memorisation probe, cross-query negatives,
pseudo-query filtering."""
import json

import pytest

from rerank_lab import BM25, load_dataset
from rerank_lab.analysis.memorisation import auc, memorisation_probe
from rerank_lab.core.provenance import TrainingData
from rerank_lab.train.negatives import mine_groups
from rerank_lab.train.pseudo import PseudoQuery, clean_query, llm_agrees, pseudo_groups, pseudo_queries, roundtrip
from tests.support import overlap, write_beir


class Memoriser:
    """Likes the documents that were SciFact train positives, whatever the query."""

    def __init__(self):
        train = load_dataset("scifact", split="train")
        corpus = load_dataset("scifact", split="test").corpus
        self.known = {corpus[d].full_text for judged in train.qrels.values() for d, r in judged.items()
                      if r >= 1 and d in corpus}

    def score(self, query, documents):
        return [float(d in self.known) + 1e-3 * len(set(query.split()) & set(d.split())) for d in documents]


class Reader:
    """Scores by what the query says (word overlap): no preference for any document."""

    def score(self, query, documents):
        return overlap(query, documents)


def test_auc_counts_ties_half_and_orders():
    assert auc([3, 4], [1, 2]) == 1.0 and auc([1, 2], [3, 4]) == 0.0 and auc([1, 1], [1, 1]) == 0.5
    with pytest.raises(ValueError, match="both sides"):
        auc([], [1.0])


def test_the_probe_separates_a_memorising_scorer_from_one_that_reads_the_query(beir_root):
    training = [TrainingData("scifact", "train")]
    memorised = memorisation_probe(Memoriser(), "scifact", training=training, n=80)
    reading = memorisation_probe(Reader(), "scifact", training=training, n=80)
    assert memorised.positives == memorised.others == 80 and set(memorised.per_query) >= {"empty", "the"}
    assert memorised.auc > 0.95 and min(memorised.per_query.values()) > 0.95
    assert abs(reading.auc - 0.5) < 0.1, reading.per_query
    assert reading.per_query["empty"] == 0.5  # no query, no information: every score ties


def test_cross_query_negatives_are_other_queries_positives_never_the_querys_own(beir_root):
    train = load_dataset("scifact", split="train")
    qids = sorted(train.queries)[:150]
    groups = mine_groups(train, BM25(), n_negatives=7, depth=30, cross_query=3, query_ids=qids)
    positives = {d for q in qids for d, r in train.qrels[q].items() if r >= 1}
    assert groups and all(len(g.negatives) == 7 for g in groups)
    for g in groups:
        judged = train.qrels[g.query_id]
        assert not set(g.negatives) & set(judged), g.query_id
        assert sum(d in positives for d in g.negatives) >= 3
    as_negative = {d for g in groups for d in g.negatives}
    assert len(as_negative & positives) / len(positives) > 0.5  # most positives are someone's negative
    plain = mine_groups(train, BM25(), n_negatives=7, depth=30, query_ids=qids)
    assert sum(d in positives for g in plain for d in g.negatives) < sum(d in positives for g in groups for d in g.negatives)
    with pytest.raises(ValueError, match="cross_query"):
        mine_groups(train, BM25(), n_negatives=2, cross_query=3, query_ids=qids)


def topic_corpus(tmp_path, topics):
    """A corpus with one short document per topic (``d0``, ``d1``, ...), titled by its topic."""
    from rerank_lab.core.data import Dataset
    from rerank_lab.data import read_corpus

    corpus = [json.dumps({"_id": f"d{i}", "title": t.title(), "text": f"We studied {t}. " * 5}) for i, t in enumerate(topics)]
    root = write_beir(tmp_path / "mini", corpus, [json.dumps({"_id": "q", "text": "x"})], [("q", "d0", 1)])
    return Dataset("mini", "test", read_corpus(root / "corpus.jsonl", []), {}, {})


def test_a_pseudo_query_that_does_not_bring_its_source_back_is_dropped(tmp_path):
    topics = ["insulin resistance in obese adults", "malaria vaccine trial in children", "zinc supplements and colds",
              "statins lower cholesterol levels", "sleep deprivation and memory", "vitamin d and bone fractures"]
    dataset = topic_corpus(tmp_path, topics)
    good = PseudoQuery("a", "malaria vaccine children", "d1", "llm", dataset.corpus["d1"].full_text)
    bad = PseudoQuery("b", "quantum chromodynamics lattice", "d2", "llm", dataset.corpus["d2"].full_text)
    kept, stats = roundtrip(dataset, [good, bad], BM25(), k=2)
    assert kept == [good] and stats == {"written": 2, "kept": 1, "roundtrip_k": 2}
    titles = pseudo_queries(dataset, n=6, kind="title")
    assert {p.text for p in titles} == {t.title() for t in topics} and all(p.positive.startswith("We studied") for p in titles)
    groups, texts = pseudo_groups(dataset, titles, BM25(), n_negatives=2, depth=6, skip_top=0)
    for g in groups:
        source = g.positive.split("#")[0]
        assert source not in g.negatives and not texts[g.positive].startswith(dataset.corpus[source].title)


def test_the_pointwise_llm_drops_a_pseudo_query_its_source_does_not_answer(tmp_path):
    from rerank_lab.llm.packaged import SMALL_GGUF

    topics = ["insulin resistance in obese adults", "malaria vaccine trial in children", "statins lower cholesterol levels"]
    dataset = topic_corpus(tmp_path, topics)
    on_topic = [PseudoQuery(f"on{i}", t, f"d{i}", "llm", dataset.corpus[f"d{i}"].full_text) for i, t in enumerate(topics)]
    off_topic = [PseudoQuery(f"off{i}", "how to bake sourdough bread", f"d{i}", "llm", dataset.corpus[f"d{i}"].full_text)
                 for i in range(len(topics))]
    assert llm_agrees(on_topic + off_topic, dataset, model=SMALL_GGUF) == on_topic


@pytest.mark.parametrize("raw, kept", [
    ("Does zinc shorten the common cold?", "Does zinc shorten the common cold?"),
    ("Query: statins and muscle pain in older adults", "statins and muscle pain in older adults"),
    ("`Effect of a dietary portfolio of cholesterol-lowering foods`", "Effect of a dietary portfolio of cholesterol-lowering foods"),
    ("SELECT * FROM papers WHERE topic = 'zinc'", None),
    ("zinc", None),
    ("", None),
])
def test_generated_queries_are_cleaned_or_rejected(raw, kept):
    assert clean_query(raw) == kept


def test_the_committed_study_table_is_what_the_committed_records_give():
    """docs/records/transfer_study.md is written from the records beside it: an edited record or a changed table
    code shows here, and Holm runs over the recipes measured in each column."""
    from pathlib import Path

    from rerank_lab.train.transfer import load_records, summary

    folder = Path(__file__).resolve().parents[2] / "docs" / "records" / "transfer"
    records = load_records(folder)
    table = summary(records)
    assert table in (folder.parent / "transfer_study.md").read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert set(rows) - {"recipe"} == {r.recipe for r in records}
    measured = {c: sum("raw" in line.split(" | ")[i] for line in rows.values()) for i, c in enumerate(
        ["SciFact clean", "SciFact → NFCorpus", "NFCorpus → SciFact"], start=1)}
    takeaways = {line.split(":")[0][2:]: line for line in table.splitlines() if line.startswith("- ")}
    for column, count in measured.items():
        assert f"Holm over {count} recipes" in takeaways[column] or "lifts hybrid" in takeaways[column]
        if "lifts hybrid" not in takeaways[column]:  # a null result says what the queries could have found
            assert "with 80% power" in takeaways[column] and "the goal's true +0.01 about" in takeaways[column]

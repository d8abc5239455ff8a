"""Relevance or memory: the clean / contaminated split, its columns, and the alarm."""
import json
import warnings

import pytest

from rerank_lab import BM25, Experiment, Interpolate, load_dataset
from rerank_lab.analysis.contamination import LiftFromMemory, contamination
from rerank_lab.analysis.plots import lift_chart, lift_panel
from rerank_lab.components import provenance as on_disk
from rerank_lab.core.provenance import TrainingData, provenance
from tests.support import write_beir


@pytest.fixture()
def shared_docs(tmp_path, monkeypatch):
    """A corpus whose train and test judgments share exactly one relevant document (d2, judged for
    test query t2), and a train judgment of 0 (d3 for r1) that is no positive."""
    corpus = [json.dumps({"_id": f"d{i}", "title": f"title {i}", "text": f"text of document {i}"}) for i in range(6)]
    queries = [json.dumps({"_id": q, "text": f"query {q}"}) for q in ("r1", "r2", "t1", "t2", "t3")]
    root = tmp_path / "beir"
    write_beir(root / "mini", corpus, queries, [("r1", "d1", 1), ("r1", "d3", 0), ("r2", "d2", 2)], split="train")
    write_beir(root / "mini", corpus, queries, [("t1", "d0", 1), ("t2", "d2", 1), ("t2", "d4", 1), ("t3", "d3", 1),
                                                ("t3", "d5", 0)], split="test")
    monkeypatch.setenv("RERANK_LAB_DATA", str(root))
    on_disk._split_qrels.cache_clear()
    yield load_dataset("mini", split="test")
    on_disk._split_qrels.cache_clear()


def test_exactly_the_query_whose_relevant_document_was_a_training_positive_is_contaminated(shared_docs):
    by_record = contamination(shared_docs, [TrainingData("mini", "train")])
    assert by_record.contaminated == ("t2",) and by_record.clean == ("t1", "t3") and by_record.seen == {"t2": ("d2",)}
    by_qrels = contamination(shared_docs, load_dataset("mini", split="train").qrels)  # a user's own fine-tuning data
    assert by_qrels.contaminated == ("t2",)
    only_r1 = TrainingData("mini", "train", query_ids=("r1",))  # a recipe that read r1 alone saw no test positive
    assert contamination(shared_docs, [only_r1]).contaminated == ()
    other_corpus = TrainingData("scifact", "train")  # another dataset's judgments name other documents
    assert contamination(shared_docs, [other_corpus]).contaminated == ()
    label_free = TrainingData("mini", "train", labels=False)
    assert contamination(shared_docs, [label_free]).contaminated == ()


class Memoriser:
    """Scores a document by whether it was a training positive, whatever the query says: a pure
    document prior, as fine-tuning on a corpus's own train judgments can learn. Mixed into BM25
    it lifts SciFact test overall (0.676 -> 0.701 at alpha 0.2) with no relevance signal at all."""

    trained_on = ("scifact:train",)

    def __init__(self, dataset):
        train = load_dataset("scifact", split="train")
        self.known = {dataset.corpus[d].full_text for judged in train.qrels.values() for d, r in judged.items()
                      if r >= 1 and d in dataset.corpus}

    def score(self, query, documents):
        return [float(d in self.known) for d in documents]


class Honest:
    """Knows relevance on every test query alike (reads the test judgments): lifts both parts."""

    trained_on = ("scifact:train",)

    def __init__(self, dataset):
        self.relevant = {(dataset.queries[q].text, dataset.corpus[d].full_text)
                         for q, judged in dataset.qrels.items() for d, r in judged.items() if r >= 1}

    def score(self, query, documents):
        return [float((query, d) in self.relevant) for d in documents]


def test_the_memory_alarm_fires_on_a_memorising_scorer_and_not_on_an_honest_one(scifact):
    first = BM25() % 30
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exp = Experiment(scifact, {"bm25": first, "bm25>>memory": first >> Interpolate(Memoriser(scifact), alpha=0.2),
                                   "bm25>>honest": first >> Honest(scifact)}, baseline="bm25", progress=False).run()
    split = contamination(scifact, "scifact:train")
    assert len(split.clean) + len(split.contaminated) == len(scifact.qrels) and split.clean and split.contaminated
    assert exp.memory() == ["bm25>>memory"]
    alarms = [str(w.message) for w in caught if issubclass(w.category, LiftFromMemory)]
    assert len(alarms) == 1 and "scifact/test" in alarms[0] and "bm25>>memory" in alarms[0]
    rows = {r["name"]: r for r in exp.table()}
    memory, honest = rows["bm25>>memory"], rows["bm25>>honest"]
    assert memory["clean_queries"] == len(split.clean) and memory["contaminated_queries"] == len(split.contaminated)
    assert memory["contaminated_delta_vs_input"] > 0 and memory["contaminated_p"] < 0.05
    assert memory["clean_delta_vs_input"] <= 0 and memory["memory"] and not honest["memory"]
    assert honest["clean_delta_vs_input"] > 0 and honest["clean_p"] < 0.05
    assert memory["trained_on"] == ["scifact:train"] and "clean_queries" not in rows["bm25"]
    text = exp.markdown()
    assert text.count("⚠ memory") == 1 and "Holm over the 2 pipelines holding a trained model" in text
    figure = lift_chart(lift_panel(exp))
    labels = " ".join(t.get_text() for t in figure.axes[0].texts)
    assert "⚠ memory" in labels and f"clean n={len(split.clean)}" in labels


@pytest.mark.filterwarnings("ignore::rerank_lab.analysis.experiment.RerankingHurt")
def test_a_zero_shot_pipeline_gets_no_split_and_a_stated_one_does(scifact):
    ds = scifact.sample(n_queries=20, seed=1)
    first = BM25() % 10
    exp = Experiment(ds, {"bm25>>overlap": first >> (lambda q, docs: [len(d) for d in docs])}, progress=False)
    row = exp.table()[0]
    assert "clean_queries" not in row and "trained_on" not in row and exp.contamination() == {}
    stated = Experiment(ds, {"bm25>>overlap": first >> (lambda q, docs: [len(d) for d in docs])}, progress=False,
                        trained_on=["scifact:train"])
    row = stated.table()[0]
    assert row["trained_on"] == ["scifact:train"] and row["clean_queries"] + row["contaminated_queries"] == 20
    assert provenance(stated.stages["bm25>>overlap"], stated.trained_on)[0].label == "scifact:train"


@pytest.mark.filterwarnings("ignore::rerank_lab.analysis.experiment.RerankingHurt")
def test_nfcorpus_with_every_query_contaminated_says_so_in_one_line(nfcorpus):
    ds = nfcorpus.sample(n_queries=25, seed=0)
    exp = Experiment(ds, {"bm25>>len": BM25() % 10 >> (lambda q, docs: [len(d) for d in docs])},
                     trained_on=["nfcorpus:train", "scifact:train"], progress=False)
    row = exp.table()[0]
    assert row["clean_queries"] == 0 and row["contaminated_queries"] == 25 and row["clean_p"] is None
    assert exp.statements() == [row["contamination_note"]]
    note = row["contamination_note"]
    assert "cannot be told from memory" in note and "every test query" in note and "nfcorpus:train" in note
    assert "scifact:train" not in note  # another corpus's judgments contaminate nothing here: not named
    assert row["trained_on"] == ["nfcorpus:train", "scifact:train"]  # ... but still recorded
    assert not exp.memory()  # no clean part to compare with: a statement, not an alarm
    both = Experiment(ds, {"bm25>>len": BM25() % 10 >> (lambda q, docs: [len(d) for d in docs]),
                           "bm25>>short": BM25() % 10 >> (lambda q, docs: [-len(d) for d in docs])},
                      trained_on=["nfcorpus:train"], progress=False)
    assert both.statements() == [note.replace("for bm25>>len", "for bm25>>len, bm25>>short")]  # one line for both


def test_the_statement_names_the_split_it_is_about(beir_root):
    train = load_dataset("scifact", split="train").sample(n_queries=10, seed=0)
    split = contamination(train, "scifact:train")  # a model trained on these very judgments
    assert split.split == "train" and not split.clean
    assert split.statement("the model").startswith("scifact: every train query is contaminated for the model")


def test_training_data_names_are_checked():
    assert TrainingData.parse("msmarco:train") == TrainingData("msmarco", "train", "stated")
    for bad in ("msmarco", ":train", "../etc:train", "scifact:tr ain"):
        with pytest.raises(ValueError, match="DATASET:SPLIT"):
            TrainingData.parse(bad)

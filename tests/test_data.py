import json

import pytest

from rerank_lab import DataError, DataWarning, load_dataset
from rerank_lab.data import Document

from tests.support import write_beir


def doc(i, text="some text", title=""):
    return json.dumps({"_id": i, "title": title, "text": text})


def query(i, text="a question"):
    return json.dumps({"_id": i, "text": text})


@pytest.fixture
def local_root(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_DATA", str(tmp_path))
    return tmp_path


def test_toy_dataset_loads_with_graded_judgments(toy):
    assert toy.queries["q1"].text == "how do I sign back into my account?"
    assert toy.qrels["q1"]["hc-signin"] == 2 and toy.qrels["q1"]["hc-reset"] == 1
    assert set(toy.qrels) == set(toy.queries)


def test_scifact_matches_the_beir_package_loader(scifact, beir_root):
    from beir.datasets.data_loader import GenericDataLoader

    corpus, queries, qrels = GenericDataLoader(str(beir_root / "scifact")).load(split="test")
    assert set(scifact.corpus) == set(corpus)
    some = next(iter(corpus))
    assert scifact.corpus[some].text == corpus[some]["text"] and scifact.corpus[some].title == corpus[some]["title"]
    assert {q: t.text for q, t in scifact.queries.items()} == queries
    assert scifact.qrels == qrels
    assert not scifact.warnings


def test_missing_dataset_names_the_variable(local_root):
    with pytest.raises(DataError, match="RERANK_LAB_DATA"):
        load_dataset("not-a-dataset", download=False)


def test_missing_split_lists_available_splits(local_root):
    write_beir(local_root / "ds", [doc("d1")], [query("q1")], [("q1", "d1", 1)])
    with pytest.raises(DataError, match=r"no 'dev' split.*Available splits: test"):
        load_dataset("ds", split="dev", download=False)


def test_malformed_json_names_file_and_line(local_root):
    write_beir(local_root / "ds", [doc("d1"), '{"_id": "d2", "text": oops}'], [query("q1")], [("q1", "d1", 1)])
    with pytest.raises(DataError, match=r"corpus.jsonl:2: malformed JSON"):
        load_dataset("ds", download=False)


def test_duplicate_document_id_is_an_error(local_root):
    write_beir(local_root / "ds", [doc("d1"), doc("d2"), doc("d1")], [query("q1")], [("q1", "d1", 1)])
    with pytest.raises(DataError, match=r"corpus.jsonl:3: duplicate document id 'd1' \(first at line 1\)"):
        load_dataset("ds", download=False)


def test_duplicate_query_id_is_an_error(local_root):
    write_beir(local_root / "ds", [doc("d1")], [query("q1"), query("q1")], [("q1", "d1", 1)])
    with pytest.raises(DataError, match="duplicate query id"):
        load_dataset("ds", download=False)


def test_qrels_naming_unknown_documents_are_counted(local_root):
    write_beir(local_root / "ds", [doc("d1")], [query("q1")], [("q1", "d1", 1), ("q1", "ghost", 1), ("q1", "ghost2", 2)])
    with pytest.warns(DataWarning, match=r"2 judgment\(s\) name 2 document\(s\) not in corpus"):
        ds = load_dataset("ds", download=False)
    assert ds.qrels["q1"] == {"d1": 1, "ghost": 1, "ghost2": 2}  # kept: trec_eval counts them
    with pytest.raises(DataError, match="not in corpus"):
        load_dataset("ds", download=False, strict=True)


def test_empty_query_is_an_error_and_empty_document_a_counted_warning(local_root):
    write_beir(local_root / "ds", [doc("d1"), doc("d2", text="")], [query("q1", "  ")], [("q1", "d1", 1)])
    with pytest.raises(DataError, match="empty text"):
        load_dataset("ds", download=False)
    write_beir(local_root / "ds2", [doc("d1"), doc("d2", text=""), doc("d3", text="")], [query("q1")], [("q1", "d1", 1)])
    with pytest.warns(DataWarning, match=r"2 document\(s\) have no title and no text"):
        ds = load_dataset("ds2", download=False)
    assert len(ds.corpus) == 3 and len(ds.warnings) == 1


def test_bad_qrels_line_names_line(local_root):
    write_beir(local_root / "ds", [doc("d1")], [query("q1")], [("q1", "d1", "high")])
    with pytest.raises(DataError, match=r"test.tsv:2: relevance 'high' is not a number"):
        load_dataset("ds", download=False)


def test_judged_query_missing_from_queries_is_dropped_and_counted(local_root):
    write_beir(local_root / "ds", [doc("d1")], [query("q1")], [("q1", "d1", 1), ("q9", "d1", 1)])
    with pytest.warns(DataWarning, match="1 judged query id"):
        ds = load_dataset("ds", download=False)
    assert set(ds.queries) == {"q1"}


def test_sample_keeps_judged_documents(scifact):
    small = scifact.sample(n_queries=10, n_distractors=50, seed=1)
    assert len(small.queries) == 10
    judged = {d for j in small.qrels.values() for d in j}
    assert judged <= set(small.corpus) and len(small.corpus) == len(judged) + 50


def test_title_and_text_join():
    assert Document("d", "body", "Title").full_text == "Title body"
    assert Document("d", "body").full_text == "body"


def test_restrict_keeps_only_named_queries_and_rejects_unknown(scifact):
    qids = sorted(scifact.queries)[:3]
    small = scifact.restrict(qids)
    assert sorted(small.queries) == qids and set(small.qrels) <= set(qids)
    assert small.corpus is scifact.corpus
    with pytest.raises(KeyError, match="not in scifact"):
        scifact.restrict(["no-such-query"])


def test_training_split_holds_out_tuning_queries(beir_root):
    from rerank_lab.train.negatives import split_queries

    train, held, split = split_queries("scifact", holdout=100, seed=7)
    assert split == "train" and len(held) == 100 and not set(train) & set(held)
    assert split_queries("scifact", holdout=100, seed=7)[1] == held  # the same seed holds out the same queries
    qrels = load_dataset("scifact", split="train").qrels
    cited = lambda qids: {d for q in qids for d, r in qrels.get(q, {}).items() if r >= 1}  # noqa: E731
    assert cited(held) and not cited(train) & cited(held)  # no held-out document is trained on
    assert len(train) + len(held) < len(qrels)  # ... which costs the training queries citing them
    train, tune, split = split_queries("nfcorpus", holdout=100, seed=7)
    assert split == "dev" and tune and not set(train) & set(tune)  # a dev split is used as it is


def test_notebooks_choose_on_the_tuning_split(beir_root, monkeypatch):
    # a notebook's choices (a depth, a length, a pipeline under a budget) are made on these queries, never on test
    import rerank_lab.notebook as notebook
    from rerank_lab.train.negatives import split_queries

    monkeypatch.setattr(notebook, "SMOKE", False)
    train, held, _ = split_queries("scifact", 100, 0)
    ds = notebook.notebook_tuning_dataset("scifact", max_queries=40)
    assert ds.split == "train" and len(ds.queries) == 40 and set(ds.queries) <= set(held)
    assert not set(ds.queries) & set(load_dataset("scifact", split="test").queries)
    assert notebook.notebook_tuning_dataset("nfcorpus", max_queries=25).split == "dev"
    sets = notebook.notebook_tuning_sets("scifact", first_stage="bm25", candidates=10)
    assert [(s.name, s.split, len(s.dataset.queries)) for s in sets] == [("scifact", "train", len(held))]


@pytest.mark.parametrize("name, split, message", [
    ("../etc", "test", r"dataset name '\.\./etc' is not a dataset name"),
    ("/abs/path", "test", "is not a dataset name"),
    ("scifact?x=1", "test", "is not a dataset name"),
    ("ds", "../../secret", r"split '\.\./\.\./secret' is not a split name"),
    ("ds", "te st", "is not a split name"),
])
def test_names_and_splits_are_checked_before_they_reach_a_path_or_url(local_root, monkeypatch, name, split, message):
    from rerank_lab import data

    write_beir(local_root / "ds", [doc("d1")], [query("q1")], [("q1", "d1", 1)])
    monkeypatch.setattr(data, "download_beir", lambda *a: pytest.fail("a bad name reached the download"))
    with pytest.raises(DataError, match=message):
        load_dataset(name, split=split)


def test_a_sub_folder_dataset_loads_and_is_never_downloaded(local_root):
    write_beir(local_root / "cqadupstack" / "android", [doc("d1")], [query("q1")], [("q1", "d1", 1)])
    assert len(load_dataset("cqadupstack/android").corpus) == 1
    with pytest.raises(DataError, match="not found"):
        load_dataset("cqadupstack/gaming")


@pytest.mark.parametrize("file, line, old, new", [("corpus.jsonl", 2, b"other", b"\xffother"),
                                                   ("queries.jsonl", 1, b"question", b"\xe9t\xe9"),
                                                   ("qrels/test.tsv", 2, b"d1", b"d\xff1")])
def test_a_line_that_is_not_utf8_names_the_file_and_line(local_root, file, line, old, new):
    folder = write_beir(local_root / "ds", [doc("d1"), doc("d2", "other text")], [query("q1")], [("q1", "d1", 1)])
    path = folder / file
    path.write_bytes(path.read_bytes().replace(old, new, 1))
    with pytest.raises(DataError, match=rf"{file}:{line}: not UTF-8 text.*save the file as UTF-8"):
        load_dataset("ds", download=False)


def test_an_empty_corpus_is_an_error_naming_it(local_root):
    write_beir(local_root / "ds", [], [query("q1")], [("q1", "d1", 1)])
    with pytest.raises(DataError, match=r"ds/corpus\.jsonl holds no documents"):
        load_dataset("ds", download=False)

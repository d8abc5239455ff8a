"""Caching, passages and refinement compose with any scorer, the same for every family."""
from dataclasses import dataclass

import pytest

from rerank_lab.components import Cached, Passages, Refine, WordWindows, close_calls
from rerank_lab.components.batching import length_batches
from rerank_lab.core.stage import Scorer


@dataclass(frozen=True)
class WordCount(Scorer):
    """Counts query words in the text: a real, deterministic scorer."""

    offset: float = 0.0
    name: str = "wordcount"

    def score(self, query, documents):
        self.count("scored", len(documents))
        words = set(query.split())
        return [sum(w in words for w in d.split()) + self.offset for d in documents]


def test_cached_scores_equal_and_hits_report_the_recorded_cost(tmp_path, monkeypatch):
    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path))
    cached = Cached(WordCount())
    docs = ["a b c", "a", "z", "a"]  # a duplicate is computed once
    assert cached.score("a b", docs) == WordCount().score("a b", docs)
    assert cached.counters["scored"] == 3 and cached.counters["cache_misses"] == 3
    again = Cached(WordCount())
    assert again.score("a b", docs) == [2, 1, 0, 1]
    assert again.counters.get("scored", 0) == 0 and again.counters["cache_hits"] == 4
    assert again.counters["saved_seconds"] > 0
    # a different setting never reads the other's scores
    assert Cached(WordCount(offset=1.0)).score("a b", docs) == [3, 2, 1, 2]


def test_passages_aggregate_by_hand():
    doc = " ".join(["a"] * 3 + ["x"] * 5 + ["a", "b"])  # 10 words
    windows = WordWindows(length=4, stride=2)
    assert windows("q", doc) == ["a a a x", "a x x x", "x x x x", "x x a b"]  # the last one ends at the end
    counts = [3, 1, 0, 2]  # query "a b"
    for aggregation, expected in [("maxp", 3), ("firstp", 3), ("sump", 6), ("meanp", 6 / 4)]:
        scorer = Passages(WordCount(), aggregation, windows)
        assert scorer.score("a b", [doc, "b"]) == pytest.approx([expected, 1])
    assert Passages(WordCount(), "maxp", windows).counters.get("passages", 0) == 0
    with pytest.raises(ValueError, match="unknown passage aggregation"):
        Passages(WordCount(), "best")
    assert counts == [WordCount().score("a b", [w])[0] for w in windows("q", doc)]


def test_refine_rescores_close_calls_at_the_top_only():
    @dataclass(frozen=True)
    class Rounded(Scorer):
        """The exact scores rounded, as a low-precision run would round them."""

        name: str = "rounded"

        def score(self, query, documents):
            return [round(float(d), 2) for d in documents]

    @dataclass(frozen=True)
    class Exact(Scorer):
        name: str = "exact"

        def score(self, query, documents):
            self.count("exact_calls")
            return [float(d) for d in documents]

    docs = ["3.449", "3.451", "1.0", "0.521", "0.519"]
    refined = Refine(Rounded(), Exact(), margin=0.05, top=2)
    scores = refined.score("q", docs)
    assert scores[:2] == [3.449, 3.451]  # the tie at the top is settled the exact way round
    assert scores[3:] == [0.52, 0.52]   # a tie below the top 2: left alone
    assert refined.counters["refined_pairs"] == 2 and refined.counters["exact_calls"] == 1
    assert close_calls([3.450, 3.449, 1.1, 0.9], margin=0.01, top=10) == [0, 1]
    with pytest.raises(ValueError, match="margin"):
        Refine(Rounded(), Exact(), margin=-1)


def test_wrappers_are_values_and_compose_as_stages(toy):
    a = Cached(Passages(WordCount(), "maxp"))
    assert a == Cached(Passages(WordCount(), "maxp")) and a != Cached(Passages(WordCount(), "sump"))
    from rerank_lab import BM25

    run = (BM25() % 4 >> a)(toy)
    assert run.costs[-1].stage == "wordcount" and run.costs[-1].counters["passages"] >= run.costs[-1].items_scored > 0


def test_length_batches_longest_first():
    batches = [b.tolist() for b in length_batches([3, 9, 1, 9, 4], batch_size=2)]
    assert batches == [[1, 3], [4, 0], [2]]
    with pytest.raises(ValueError):
        list(length_batches([1], 0))


def test_a_plain_function_gets_caching_and_passages(tmp_path, monkeypatch):
    from rerank_lab.core.stage import as_scorer

    monkeypatch.setenv("RERANK_LAB_CACHE", str(tmp_path))
    calls = []

    def overlap(query, documents):
        calls.append(len(documents))
        return [len(set(query.split()) & set(d.split())) for d in documents]

    cached = Cached(Passages(as_scorer(overlap), "maxp", WordWindows(2, 1)))
    assert cached.score("a b", ["a x b", "z z"]) == [1, 0]
    assert cached.score("a b", ["a x b", "z z"]) == [1, 0] and calls == [3]  # the second call is all hits
    assert cached.identity()["scorer"]["source"] == as_scorer(overlap).identity()["source"]

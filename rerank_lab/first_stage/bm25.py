"""BM25 with bm25s (Lucene variant, English Snowball stemming and stopwords, title + text).

Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond" (2009);
Lù, "BM25S: Orders of magnitude faster lexical search via eager sparse scoring" (2024).
Defaults k1=0.9, b=0.4 follow pyserini's BEIR "flat" baseline. The index is cached on disk
per corpus and settings with the sha256 of its files (a damaged one is moved aside and rebuilt).

Usage::

    run = BM25()(dataset)            # top 1000
    run = (BM25() % 100)(dataset)    # top 100
"""
from __future__ import annotations

from dataclasses import dataclass

from ..components.stores import cache_dir
from ..core.data import corpus_fingerprint
from ..core.files import atomic_dir, checksum_problem, quarantine, stable_hash, write_checksums
from ..core.stage import FirstStage


@dataclass(frozen=True)
class BM25(FirstStage):
    k1: float = 0.9
    b: float = 0.4
    method: str = "lucene"
    stemmer: str | None = "english"
    stopwords: str | None = "en"
    name: str = "bm25"

    def _tokenizer(self):
        import bm25s.tokenization
        import Stemmer

        stemmer = Stemmer.Stemmer(self.stemmer) if self.stemmer else None
        return bm25s.tokenization.Tokenizer(stemmer=stemmer, stopwords=self.stopwords, lower=True)

    def index(self, corpus) -> tuple:
        """(retriever, tokenizer, doc ids) for ``corpus``: built once, then loaded from the disk cache."""
        import bm25s

        fingerprint = corpus_fingerprint(corpus)
        loaded = self._state.setdefault("indices", {})
        if fingerprint in loaded:
            return loaded[fingerprint]
        key = stable_hash("bm25s", bm25s.__version__, fingerprint, self.k1, self.b, self.method, self.stemmer,
                          self.stopwords, "checksummed")
        folder = cache_dir("bm25") / key
        doc_ids = list(corpus)
        tokenizer = self._tokenizer()
        retriever = None
        if folder.exists():
            problem = checksum_problem(folder)
            try:
                if problem:
                    raise ValueError(problem)
                retriever = bm25s.BM25.load(str(folder))
                tokenizer.load_vocab(str(folder))
            except Exception as exc:  # noqa: BLE001 - any unreadable index is rebuilt, never used
                quarantine(folder, f"cannot use the BM25 index: {exc}")
                tokenizer, retriever = self._tokenizer(), None
        if retriever is None:
            texts = [corpus[d].full_text for d in doc_ids]
            tokens = tokenizer.tokenize(texts, return_as="ids", show_progress=len(texts) > 20000)
            retriever = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
            retriever.index((tokens, tokenizer.get_vocab_dict()), show_progress=False)
            with atomic_dir(folder) as staging:
                retriever.save(str(staging))
                tokenizer.save_vocab(str(staging))
                (staging / "done").write_text("ok")
                write_checksums(staging)
        loaded[fingerprint] = (retriever, tokenizer, doc_ids)
        return loaded[fingerprint]

    def prepare(self, corpus) -> None:
        self.index(corpus)

    def search(self, queries, corpus, k):
        retriever, tokenizer, doc_ids = self.index(corpus)
        qids = list(queries)
        tokens = tokenizer.tokenize([queries[q].text for q in qids], return_as="ids", update_vocab=False,
                                    show_progress=False)
        k = min(k, len(doc_ids))
        results: dict[str, dict[str, float]] = {}
        # Queries with no known term have no BM25 evidence: an empty ranking, not an error.
        nonempty = [i for i, t in enumerate(tokens) if len(t)]
        for i in set(range(len(qids))) - set(nonempty):
            results[qids[i]] = {}
        if nonempty:
            docs, scores = retriever.retrieve([tokens[i] for i in nonempty], k=k, show_progress=False, n_threads=1)
            for row, i in enumerate(nonempty):
                keep = scores[row] > 0
                results[qids[i]] = {doc_ids[d]: float(s) for d, s in zip(docs[row][keep], scores[row][keep])}
        return results

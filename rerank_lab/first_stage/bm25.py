"""BM25 with bm25s (Lucene variant, English Snowball stemming and stopwords, title + text).

Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond" (2009);
Lù, "BM25S: Orders of magnitude faster lexical search via eager sparse scoring" (2024).
Defaults k1=0.9, b=0.4 follow pyserini's BEIR "flat" baseline.

Usage::

    run = BM25()(dataset)            # top 1000
    run = (BM25() % 100)(dataset)    # top 100
"""
from __future__ import annotations

from ..cache import cache_dir, stable_hash
from ..data import corpus_fingerprint
from ..pipeline import FirstStage


class BM25(FirstStage):
    def __init__(self, k1: float = 0.9, b: float = 0.4, method: str = "lucene",
                 stemmer: str | None = "english", stopwords: str | None = "en", name: str = "bm25"):
        self.k1, self.b, self.method, self.stemmer_lang, self.stopwords = k1, b, method, stemmer, stopwords
        self.name = name
        self._loaded: dict[str, tuple] = {}

    def _tokenizer(self):
        import bm25s.tokenization
        import Stemmer

        stemmer = Stemmer.Stemmer(self.stemmer_lang) if self.stemmer_lang else None
        return bm25s.tokenization.Tokenizer(stemmer=stemmer, stopwords=self.stopwords, lower=True)

    def index(self, corpus) -> tuple:
        """Build (or load from the disk cache) the index for ``corpus``."""
        import bm25s

        fingerprint = corpus_fingerprint(corpus)
        if fingerprint in self._loaded:
            return self._loaded[fingerprint]
        key = stable_hash("bm25s", bm25s.__version__, fingerprint, self.k1, self.b, self.method,
                          self.stemmer_lang, self.stopwords)
        folder = cache_dir("bm25") / key
        doc_ids = list(corpus)
        tokenizer = self._tokenizer()
        if (folder / "done").exists():
            retriever = bm25s.BM25.load(str(folder))
            tokenizer.load_vocab(str(folder))
        else:
            texts = [corpus[d].full_text for d in doc_ids]
            tokens = tokenizer.tokenize(texts, return_as="ids", show_progress=len(texts) > 20000)
            retriever = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
            retriever.index((tokens, tokenizer.get_vocab_dict()), show_progress=False)
            _save_atomically(folder, retriever, tokenizer)
        self._loaded[fingerprint] = (retriever, tokenizer, doc_ids)
        return self._loaded[fingerprint]

    def prepare(self, corpus) -> None:
        self.index(corpus)

    def search(self, queries, corpus, k):
        retriever, tokenizer, doc_ids = self.index(corpus)
        qids = list(queries)
        tokens = tokenizer.tokenize([queries[q].text for q in qids], return_as="ids",
                                    update_vocab=False, show_progress=False)
        k = min(k, len(doc_ids))
        results: dict[str, dict[str, float]] = {}
        # Queries with no known term have no BM25 evidence: an empty ranking, not an error.
        nonempty = [i for i, t in enumerate(tokens) if len(t)]
        for i in set(range(len(qids))) - set(nonempty):
            results[qids[i]] = {}
        if nonempty:
            docs, scores = retriever.retrieve([tokens[i] for i in nonempty], k=k, show_progress=False,
                                              n_threads=1)
            for row, i in enumerate(nonempty):
                keep = scores[row] > 0
                results[qids[i]] = {doc_ids[d]: float(s) for d, s in zip(docs[row][keep], scores[row][keep])}
        return results


def _save_atomically(folder, retriever, tokenizer) -> None:
    import shutil
    import tempfile
    from pathlib import Path

    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        retriever.save(str(tmp))
        tokenizer.save_vocab(str(tmp))
        (tmp / "done").write_text("ok")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

"""GPU figures in one run: the lab's model-holding stages on a CUDA card against their peers, as ratios.

Measured in one process on one card, each pair taking turns chunk by chunk (so whatever else runs on
the card weighs on both):

1. **cross-encoder**: the lab cross-encoder as the registry runs it on a GPU (``fast``: bf16, close
   calls re-scored in fp32) against sentence-transformers ``CrossEncoder`` in bf16 and in fp16, on the
   same SciFact (query, BM25 top 20) pairs: pairs/s and the nDCG@10 of each;
2. **dense**: corpus encoding with ``Dense(device=...)`` (fp32, the default) against
   ``SentenceTransformer.encode`` (fp32) on the same SciFact documents: docs/s and the largest cosine gap;
3. **ColBERT**: the lab ColBERT reranking from a cold cache against PyLate on the same MiniLM body and
   projection (skipped, with the reason printed, when PyLate is not installed);
4. **an LLM family on the transformers backend**: ``PointwiseLLM`` (prefix reuse, one forward pass per
   passage) against a plain transformers forward per prompt on the same model and prompts;
5. **the main job**: bm25, dense, hybrid and hybrid>>ce on SciFact test with an empty cache, in minutes.

The card is printed first; the last line is::

    ce_speedup_bf16=<x> ce_speedup_fp16=<x> dense_speedup=<x> colbert_speedup=<x|skipped> llm_speedup=<x>
    main_job_minutes=<x>        (on the same line)

Usage::

    RERANK_LAB_DATA=../shared/beir .venv/bin/python benchmarks/gpu.py
    RERANK_LAB_DATA=../shared/beir .venv/bin/python benchmarks/gpu.py --device cpu --small   # checks the script only

On a machine without a CUDA GPU it stops at once with one line (nothing is measured).
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time

import numpy as np


def card(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    from rerank_lab.analysis.manifest import machine

    return f"{machine()['cpu']} (CPU: checks the script only, no GPU figure)"


def alternate(fns: dict, chunks: list) -> tuple[dict, dict]:
    """Run every function on every chunk, taking turns per chunk; (seconds, concatenated outputs) per name."""
    import torch

    seconds = dict.fromkeys(fns, 0.0)
    outputs: dict = {name: [] for name in fns}
    for fn in fns.values():  # load models and warm kernels outside the clock
        fn(chunks[0][:4])
    for chunk in chunks:
        for name, fn in fns.items():
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            outputs[name].append(np.asarray(fn(chunk), dtype=np.float64))
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            seconds[name] += time.perf_counter() - t0
    return seconds, {k: np.concatenate(v) for k, v in outputs.items()}


def cross_encoder_figures(dataset, device: str, pairs_wanted: int) -> dict:
    import torch
    from sentence_transformers import CrossEncoder

    from rerank_lab import BM25, Run, evaluate
    from rerank_lab.components.lab_weights import LAB_CE_DIR
    from rerank_lab.rerankers.cross_encoder import cross_encoder

    sample = dataset.sample(-(-pairs_wanted // 20), seed=0)
    run = (BM25() % 20)(sample)
    owners = [(q, d) for q in sorted(run.rankings) for d in run.doc_ids(q)][:pairs_wanted]
    pairs = [(sample.queries[q].text, sample.corpus[d].full_text) for q, d in owners]
    ours = cross_encoder(LAB_CE_DIR, mode="fast", device=device, cache=False, max_length=256)

    def lab(chunk):
        out = []
        for query, group in itertools.groupby(chunk, key=lambda p: p[0]):
            out.extend(ours.score(query, [text for _, text in group]))
        return out

    def peer(dtype):
        model = CrossEncoder(str(LAB_CE_DIR), max_length=256, device=device, model_kwargs={"dtype": dtype})
        return lambda chunk: model.predict(chunk, batch_size=32, activation_fn=torch.nn.Identity(),
                                           show_progress_bar=False)

    fns = {"ours (fast)": lab, "st-bf16": peer(torch.bfloat16), "st-fp16": peer(torch.float16)}
    starts = [i for i in range(len(pairs)) if i == 0 or owners[i][0] != owners[i - 1][0]] + [len(pairs)]
    cuts = sorted({min(starts, key=lambda s: abs(s - x)) for x in np.linspace(0, len(pairs), 5)})
    seconds, scores = alternate(fns, [pairs[a:b] for a, b in zip(cuts, cuts[1:]) if b > a])

    def ndcg(values):
        by_query: dict = {}
        for (q, d), s in zip(owners, values):
            by_query.setdefault(q, {})[d] = float(s)
        return evaluate(Run.from_scores(by_query), sample.qrels, ["ndcg@10"]).means["ndcg@10"]

    for name in fns:
        print(f"cross-encoder {name:>12}: {len(pairs) / seconds[name]:8.1f} pairs/s  nDCG@10 {ndcg(scores[name]):.4f}",
              flush=True)
    return {"ce_speedup_bf16": seconds["st-bf16"] / seconds["ours (fast)"],
            "ce_speedup_fp16": seconds["st-fp16"] / seconds["ours (fast)"]}


def dense_figures(dataset, device: str, docs_wanted: int) -> dict:
    from sentence_transformers import SentenceTransformer

    from rerank_lab.components.models import MINILM, resolve_model
    from rerank_lab.first_stage import Dense

    texts = [dataset.corpus[d].full_text for d in list(dataset.corpus)[:docs_wanted]]
    ours = Dense(device=device)
    peer = SentenceTransformer(resolve_model(MINILM), device=device)
    fns = {"ours (fp32)": ours.encode,
           "st (fp32)": lambda chunk: peer.encode(chunk, batch_size=64, normalize_embeddings=True,
                                                  convert_to_numpy=True, show_progress_bar=False)}
    size = -(-len(texts) // 4)
    seconds, vectors = alternate(fns, [texts[i:i + size] for i in range(0, len(texts), size)])
    dim = 384
    a, b = (vectors[k].reshape(-1, dim) for k in fns)
    gap = float(np.abs((a * b).sum(axis=1) - 1).max())
    for name in fns:
        print(f"dense {name:>12}: {len(texts) / seconds[name]:8.1f} docs/s", flush=True)
    print(f"dense largest 1 - cosine(ours, sentence-transformers): {gap:.2e}", flush=True)
    return {"dense_speedup": seconds["st (fp32)"] / seconds["ours (fp32)"]}


def colbert_figures(dataset, device: str, queries: int) -> dict:
    try:
        from pylate import models, rank
    except ImportError as exc:
        print(f"colbert: skipped: PyLate is not installed here ({exc}); `pip install pylate` (or "
              f"benchmarks/setup_bench_env.sh) to compare", flush=True)
        return {"colbert_speedup": "skipped"}
    import torch
    from safetensors.torch import load_file

    from rerank_lab import BM25
    from rerank_lab.components.lab_weights import LAB_COLBERT_DIR
    from rerank_lab.components.models import MINILM, resolve_model
    from rerank_lab.rerankers.colbert import ColBERT

    sample = dataset.sample(queries, seed=0)
    run = (BM25() % 100)(sample)
    items = [(q, sample.queries[q].text, run.doc_ids(q)) for q in sorted(run.rankings)]
    corpus = sample.corpus
    with tempfile.TemporaryDirectory() as cold:
        os.environ["RERANK_LAB_CACHE"] = cold
        ours = ColBERT(str(LAB_COLBERT_DIR), device=device)
        ours.score("warm up", ["load the weights before the clock"])
        t0 = time.perf_counter()
        for _, query, docs in items:
            ours.score(query, [corpus[d].full_text for d in docs])
        mine = time.perf_counter() - t0
    peer = models.ColBERT(model_name_or_path=resolve_model(MINILM), device=device, embedding_size=384,
                          document_length=256, query_length=32, do_query_expansion=False)
    with torch.no_grad():
        peer[-1].linear.weight.copy_(load_file(str(LAB_COLBERT_DIR / "model.safetensors"))["linear.weight"].float())
    peer.encode(["warm up"], is_query=True)
    t0 = time.perf_counter()
    for _, query, docs in items:
        q = peer.encode([query], is_query=True, convert_to_tensor=False)
        d = peer.encode([[corpus[x].full_text for x in docs]], is_query=False, batch_size=32)
        rank.rerank(documents_ids=[list(range(len(docs)))], queries_embeddings=q, documents_embeddings=d)
    theirs = time.perf_counter() - t0
    print(f"colbert: ours {mine:.1f} s, PyLate {theirs:.1f} s for {len(items)} queries x BM25 top 100", flush=True)
    return {"colbert_speedup": theirs / mine}


def llm_figures(dataset, device: str, queries: int, depth: int) -> dict:
    import torch

    from rerank_lab import BM25
    from rerank_lab.llm.backends import load_backend
    from rerank_lab.llm.packaged import SMALL_GGUF
    from rerank_lab.llm.prompts import pointwise_messages
    from rerank_lab.rerankers.llm_pointwise import PointwiseLLM

    sample = dataset.sample(queries, seed=0)
    run = (BM25() % depth)(sample)
    llm = load_backend(SMALL_GGUF, "transformers", device=device)
    ours = PointwiseLLM(backend=llm, cache=False)
    requests = [(sample.queries[q].text, [sample.corpus[d].full_text for d in run.doc_ids(q)])
                for q in sorted(run.rankings)]
    yes, no = (llm.continuation_token(pointwise_messages("q", "p"), "", word) for word in ("Yes", "No"))

    def plain(query, documents):  # what a user writes: one forward pass per prompt, no cache reuse
        out = []
        for passage in ours.passages(documents):
            ids = torch.tensor([llm.prompt_ids(pointwise_messages(query, passage))], device=llm.device)
            with torch.inference_mode():
                logits = llm.model(input_ids=ids).logits[0, -1].float()
            out.append(float(logits[yes] - logits[no]))
        return out

    ours.score(*requests[0])  # warm
    plain(*requests[0])
    spent = {"ours": 0.0, "plain": 0.0}
    scores: dict = {"ours": [], "plain": []}
    for request in requests:
        for name, fn in (("ours", ours.score), ("plain", plain)):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            scores[name].append(np.argsort(-np.asarray(fn(*request))))
            spent[name] += time.perf_counter() - t0
    agree = np.mean([np.array_equal(a, b) for a, b in zip(scores["ours"], scores["plain"])])
    print(f"llm-pointwise (transformers, {SMALL_GGUF}): ours {spent['ours']:.1f} s, plain forward "
          f"{spent['plain']:.1f} s, same ranking on {agree:.0%} of {len(requests)} queries", flush=True)
    return {"llm_speedup": spent["plain"] / spent["ours"]}


def main_job_minutes(device: str, name: str) -> dict:
    from rerank_lab import Experiment, load_dataset
    from rerank_lab.cli import lift_pipelines

    dataset = load_dataset(name, split="test")
    with tempfile.TemporaryDirectory() as cold:
        os.environ["RERANK_LAB_CACHE"] = cold
        t0 = time.perf_counter()
        exp = Experiment(dataset, lift_pipelines(device=device), baseline="hybrid", progress=False).run()
        minutes = (time.perf_counter() - t0) / 60
    row = {r["name"]: r["ndcg@10"] for r in exp.table()}
    print(f"main job ({name}, {len(dataset.queries)} queries, empty cache): {minutes:.2f} min; nDCG@10 {row}",
          flush=True)
    return {"main_job_minutes": minutes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cuda:N; cpu checks the script only")
    parser.add_argument("--small", action="store_true", help="tiny sizes: a check of the script, not a figure")
    args = parser.parse_args()
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"gpu.py: no CUDA GPU here (torch {torch.__version__}"
                         f"{', a CPU-only build' if torch.version.cuda is None else ''}): run it on a GPU machine; "
                         f"nothing was measured")
    from rerank_lab import load_dataset

    print(f"card: {card(args.device)}", flush=True)
    scifact = load_dataset("scifact", split="test")
    small = args.small
    figures: dict = {}
    figures.update(cross_encoder_figures(scifact, args.device, 60 if small else 2000))
    figures.update(dense_figures(scifact, args.device, 64 if small else 5183))
    figures.update(colbert_figures(scifact, args.device, 2 if small else 50))
    figures.update(llm_figures(scifact, args.device, 1 if small else 10, 3 if small else 20))
    figures.update(main_job_minutes(args.device, "toy" if small else "scifact"))
    print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    sys.exit(main())

"""``rerank-lab``: evaluate a pipeline, or draw the lift chart, from the shell.

Usage::

    rerank-lab evaluate scifact 'hybrid>>ce' --json
    rerank-lab evaluate nfcorpus 'bm25%1000>>ce%100>>listwise%20' --max-queries 20
    rerank-lab lift scifact --out results/          # lift.png + results.md + runs
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path



def _dataset(name: str, split: str, max_queries: int | None, seed: int):
    from .data import load_dataset

    dataset = load_dataset(name, split=split)
    return dataset.sample(max_queries, seed=seed) if max_queries else dataset


def cmd_evaluate(args) -> int:
    from .analysis.evaluate import evaluate
    from .specs import parse_pipeline

    pipeline = parse_pipeline(args.pipeline)
    dataset = _dataset(args.dataset, args.split, args.max_queries, args.seed)
    start = time.perf_counter()
    run = pipeline(dataset)
    seconds = time.perf_counter() - start
    metrics = list(dict.fromkeys(["ndcg@10", "recall@100", *args.metrics]))
    results = evaluate(run, dataset.qrels, metrics, dataset.ignore_identical_ids, name=args.pipeline)
    if args.save_run:
        run.write_trec(args.save_run)
    record = {"dataset": args.dataset, "pipeline": args.pipeline, "split": args.split,
              "queries": results.queries, **{m: round(v, 4) for m, v in results.means.items()},
              "seconds": round(seconds, 2), "stages": [c.as_dict() for c in run.costs]}
    if args.json:
        print(json.dumps(record))
    else:
        for key, value in record.items():
            if key != "stages":
                print(f"{key:>12}: {value}")
        for cost in record["stages"]:
            print(f"{'stage':>12}: {cost['stage']} {cost['seconds']} s, {cost['items_scored']} items")
    return 0


def cmd_lift(args) -> int:
    from .analysis.experiment import Experiment, lift_pipelines
    from .analysis.plots import lift_charts

    args.pipelines = args.pipelines or lift_pipelines()
    out = Path(args.out)
    tables, sections = {}, []
    for name in args.datasets:
        dataset = _dataset(name, args.split, args.max_queries, args.seed)
        exp = Experiment(dataset, args.pipelines, baseline=list(args.pipelines)[0])
        exp.save(out / name)
        tables[name] = {row["name"]: row["ndcg@10"] for row in exp.table()}
        sections.append(f"## {name} ({args.split}, {len(dataset.queries)} queries)\n\n{exp.markdown()}\n")
        print(sections[-1], flush=True)
    lift_charts(tables, path=out / "lift.png")
    from .core.files import atomic_write_text

    atomic_write_text(out / "results.md", "# Lift chart results\n\n" + "\n".join(sections))
    print(f"wrote {out / 'lift.png'} and {out / 'results.md'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rerank-lab", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("evaluate", help="run one pipeline on a dataset and print its metrics")
    ev.add_argument("dataset", help="BEIR dataset name (under RERANK_LAB_DATA, downloaded if online) or 'toy'")
    ev.add_argument("pipeline", help="e.g. bm25, hybrid, 'hybrid>>ce', 'bm25%%1000>>ce%%100>>listwise%%20'")
    ev.add_argument("--split", default="test")
    ev.add_argument("--max-queries", type=int, default=None, help="evaluate a random sample of N queries")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--metrics", nargs="*", default=["mrr@10", "map"])
    ev.add_argument("--save-run", help="write the final run as a TREC run file")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.set_defaults(func=cmd_evaluate)

    lift = sub.add_parser("lift", help="the lift chart: several pipelines, one bar each")
    lift.add_argument("datasets", nargs="+")
    lift.add_argument("--pipelines", nargs="+", default=None,
                      help="default: bm25 dense hybrid, then hybrid>>R for every lab reranker that loads")
    lift.add_argument("--split", default="test")
    lift.add_argument("--max-queries", type=int, default=None)
    lift.add_argument("--seed", type=int, default=0)
    lift.add_argument("--out", default="results")
    lift.set_defaults(func=cmd_lift)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .data import DataError

    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            return args.func(args)
    except (DataError, ValueError, KeyError, FileNotFoundError) as exc:
        print(f"rerank-lab: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""``rerank-lab``: evaluate a pipeline, sweep its depth, or draw the lift chart, from the shell.

Usage::

    rerank-lab evaluate scifact 'hybrid>>ce' --json
    rerank-lab evaluate nfcorpus bm25 --empty-rankings skip          # average ranked queries only (pytrec_eval)
    rerank-lab sweep scifact 'hybrid>>ce' --depths 10 20 50 100
    rerank-lab lift scifact --out results/                           # lift.png + results.md + runs
    rerank-lab lift scifact --ray                                    # the same on a local Ray cluster (or --ray ADDRESS)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

# Third-party notices that say nothing to a user of the command (their libraries' internals).
_QUIET = [
    ("ignore", r".*", DeprecationWarning, r"(torch|transformers|colbert|jupyter_client|setuptools|pkg_resources).*"),
    ("ignore", r".*", FutureWarning, r"(torch|transformers|colbert|sentence_transformers).*"),
    ("ignore", r".*TracerWarning.*", Warning, r".*"),
    ("ignore", r".*(license|License).*", Warning, r".*"),
]


def positive_int(text: str) -> int:
    """argparse type: a positive integer, with a message that says what to do otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number of queries, got {value} "
                                         f"(leave --max-queries out to use every query)")
    return value


def _dataset(name: str, split: str, max_queries: int | None, seed: int):
    from .data import load_dataset

    dataset = load_dataset(name, split=split)
    return dataset.sample(max_queries, seed=seed) if max_queries else dataset


def _executor(args):
    if getattr(args, "ray", None) is None:
        return None
    from .distributed.ray_executor import executor

    return executor(None if args.ray == "local" else args.ray)


def _plan(dataset, pipelines: dict) -> None:
    """Say what a run will cost before it starts."""
    from .analysis.experiment import machine, planned_items

    items = planned_items(pipelines, len(dataset.queries))
    print(f"plan: {dataset.name}/{dataset.split}, {len(dataset.queries)} queries over {len(dataset.corpus)} documents; "
          f"{len(pipelines)} pipeline(s): {', '.join(pipelines)}; up to {items:,} (query, document) items to rerank "
          f"(cached ones cost a lookup); on {machine()['cpu']}", file=sys.stderr, flush=True)


def cmd_evaluate(args) -> int:
    from .analysis.evaluate import evaluate
    from .analysis.experiment import PrefixCache, machine
    from .specs import parse_pipeline

    pipeline = parse_pipeline(args.pipeline)
    dataset = _dataset(args.dataset, args.split, args.max_queries, args.seed)
    _plan(dataset, {args.pipeline: pipeline})
    start = time.perf_counter()
    run = PrefixCache(_executor(args)).run(pipeline, dataset)
    seconds = time.perf_counter() - start
    metrics = list(dict.fromkeys(["ndcg@10", "recall@100", "judged@10", *args.metrics]))
    results = evaluate(run, dataset.qrels, metrics, dataset.ignore_identical_ids, name=args.pipeline,
                       empty_rankings=args.empty_rankings, condensed=args.judged_only)
    if args.save_run:
        run.write_trec(args.save_run)
    record = {"dataset": args.dataset, "pipeline": args.pipeline, "split": args.split, "queries": results.queries,
              "empty_rankings": results.empty_rankings,
              "empty_rankings_counted_as": "0" if args.empty_rankings == "zero" else "skipped",
              "judged_only": args.judged_only, **{m: round(v, 4) for m, v in results.means.items()},
              "seconds": round(seconds, 2), "model_seconds": round(run.total_seconds("model"), 2),
              "cpu": machine()["cpu"], "stages": [c.as_dict() for c in run.costs]}
    if args.json:
        print(json.dumps(record))
        return 0
    for key, value in record.items():
        if key != "stages":
            print(f"{key:>26}: {value}")
    for cost in record["stages"]:
        print(f"{'stage':>26}: {cost['stage']}: model {cost['model_seconds']} s "
              f"({1000 * cost['model_median_query_seconds']:.1f} ms/query median), wall {cost['seconds']} s, "
              f"{cost['items_scored']} items" + (f", {cost['cache_hits']} cache hits" if cost.get("cache_hits") else ""))
    return 0


def cmd_sweep(args) -> int:
    from .analysis.experiment import machine, sweep
    from .analysis.plots import sweep_plot

    dataset = _dataset(args.dataset, args.split, args.max_queries, args.seed)
    print(f"plan: sweep {args.pipeline} at depths {', '.join(map(str, args.depths))} on {dataset.name}/{dataset.split} "
          f"({len(dataset.queries)} queries; each document scored once, deeper cuts reuse the scores); "
          f"on {machine()['cpu']}", file=sys.stderr, flush=True)
    result = sweep(dataset, args.pipeline, args.depths, args.metric)
    out = Path(args.out)
    plot = out / f"sweep-{dataset.name}-{_safe(args.pipeline)}.png"
    sweep_plot(result, path=plot)
    if result.peaks_and_falls:
        print(f"rerank-lab: warning: {args.pipeline} on {dataset.name} peaks at depth {result.peak_depth} and falls "
              f"after it: reranking deeper hurts here", file=sys.stderr)
    if args.json:
        print(json.dumps({**result.as_dict(), "plot": str(plot)}))
        return 0
    print(f"{args.pipeline} on {dataset.name}/{dataset.split}: first stage alone {args.metric} {result.first_stage:.4f}")
    for row in result.rows:
        marks = (" <- peak" if row["peak"] else "") + (" <- 90% of the peak gain" if row["depth"] == result.depth_90 else "")
        print(f"  depth {row['depth']:>4}: {args.metric} {row[args.metric]:.4f} ({row['gain']:+.4f}), "
              f"model {row['model_seconds_per_query']:.3f} s/query{marks}")
    print(f"wrote {plot}")
    return 0


def cmd_lift(args) -> int:
    from .analysis.experiment import LIFT_RERANKERS, Experiment, lift_pipelines
    from .analysis.plots import lift_charts
    from .core.files import atomic_write_text

    if args.pipelines and args.rerankers:
        raise SystemExit("rerank-lab lift: give --pipelines or --rerankers, not both")
    pipelines = {p: p for p in args.pipelines} if args.pipelines else \
        lift_pipelines(rerankers=args.rerankers or LIFT_RERANKERS)
    out = Path(args.out)
    tables, hurt, sections = {}, {}, []
    executor = _executor(args)
    for name in args.datasets:
        dataset = _dataset(name, args.split, args.max_queries, args.seed)
        exp = Experiment(dataset, pipelines, baseline="hybrid" if "hybrid" in pipelines else list(pipelines)[0],
                         executor=executor)
        _plan(dataset, exp.stages)
        exp.run()
        exp.save(out / name)
        tables[name] = {row["name"]: row["ndcg@10"] for row in exp.table()}
        hurt[name] = list(exp.hurt())
        sections.append(f"## {name} ({args.split}, {len(dataset.queries)} queries)\n\n{exp.markdown()}\n")
        print(sections[-1], flush=True)
        for line in exp.alarms():
            print(f"rerank-lab: warning: {line}", file=sys.stderr)
    lift_charts(tables, path=out / "lift.png", hurt=hurt)
    atomic_write_text(out / "results.md", "# Lift chart results\n\n" + "\n".join(sections))
    print(f"wrote {out / 'lift.png'} and {out / 'results.md'}")
    return 0


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.%-]+", "_", name.replace(">>", "__")).strip("_")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-queries", type=positive_int, default=None, help="evaluate a random sample of N queries")
    parser.add_argument("--seed", type=int, default=0, help="seed of the query sample")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rerank-lab", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("evaluate", help="run one pipeline on a dataset and print its metrics and cost")
    ev.add_argument("dataset", help="BEIR dataset name (under RERANK_LAB_DATA, downloaded if online) or 'toy'")
    ev.add_argument("pipeline", help="e.g. bm25, hybrid, 'hybrid>>ce', 'bm25%%1000>>ce%%100>>listwise%%20'")
    _common(ev)
    ev.add_argument("--metrics", nargs="*", default=["mrr@10", "map"])
    ev.add_argument("--empty-rankings", choices=["zero", "skip"], default="zero",
                    help="judged queries the pipeline ranks nothing for: count as 0 (default, trec_eval -c) or "
                         "skip them (as pytrec_eval and the BEIR tables)")
    ev.add_argument("--judged-only", action="store_true", help="drop unjudged documents first (condensed lists)")
    ev.add_argument("--save-run", help="write the final run as a TREC run file")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                    help="run on Ray: a local cluster, or join the one at ADDRESS")
    ev.set_defaults(func=cmd_evaluate)

    sw = sub.add_parser("sweep", help="how deep to rerank: one evaluation per depth, peak marked, plot saved")
    sw.add_argument("dataset")
    sw.add_argument("pipeline", help="a first stage and one reranker, e.g. 'hybrid>>ce'")
    sw.add_argument("--depths", nargs="+", type=positive_int, default=[10, 20, 50, 100])
    sw.add_argument("--metric", default="ndcg@10")
    _common(sw)
    sw.add_argument("--out", default="results", help="folder for the plot")
    sw.add_argument("--json", action="store_true", help="print one JSON object with a row per depth")
    sw.set_defaults(func=cmd_sweep)

    lift = sub.add_parser("lift", help="the lift chart: several pipelines, one bar each")
    lift.add_argument("datasets", nargs="+")
    lift.add_argument("--pipelines", nargs="+", default=None,
                      help="default: bm25 dense hybrid hybrid>>ce")
    lift.add_argument("--rerankers", nargs="+", default=None, metavar="NAME",
                      help="bm25 dense hybrid, then hybrid>>NAME for each (e.g. maxsim colbert ce, as notebook 01)")
    _common(lift)
    lift.add_argument("--out", default="results")
    lift.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                      help="run on Ray: a local cluster, or join the one at ADDRESS")
    lift.set_defaults(func=cmd_lift)
    return parser


def _show(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"rerank-lab: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from .data import DataError

    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        for action, message, category, module in _QUIET:
            warnings.filterwarnings(action, message=message, category=category, module=module)
        warnings.showwarning = _show
        try:
            return args.func(args)
        except (DataError, ValueError, KeyError, FileNotFoundError, ImportError) as exc:
            print(f"rerank-lab: error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())

"""``rerank-lab``: evaluate a pipeline, sweep its depth, or draw the lift chart, from the shell.

Usage::

    rerank-lab evaluate scifact 'hybrid>>ce' --json
    rerank-lab evaluate nfcorpus bm25 --empty-rankings skip          # average ranked queries only (pytrec_eval)
    rerank-lab sweep scifact 'hybrid>>ce' --depths 10 20 50 100
    rerank-lab lift scifact --out results/                           # lift.png + results.md + runs
    rerank-lab lift scifact --ray                                    # the same on a local Ray cluster (or --ray ADDRESS)
    rerank-lab evaluate scifact 'hybrid>>mine' --trained-on msmarco:train   # state what a hub model learned from
    rerank-lab evaluate scifact 'hybrid>>ce' --device cuda           # models on the GPU (auto: it when there is one)

Every reranking pipeline is tested against its own input; one holding a model with training
judgments (recorded beside lab weights, or stated with ``--trained-on``) also gets its test
queries split into clean and contaminated (:mod:`rerank_lab.analysis.contamination`).
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


#: the main job's rerankers: the lab cross-encoder alone (a cold SciFact lift took 9.2 minutes on 2 CPU cores, against
#: 19 with ColBERT's and MaxSim's document encodings); notebook 01 draws all three
LIFT_RERANKERS = ("ce",)
ALL_LIFT_RERANKERS = ("maxsim", "colbert", "ce")


def lift_pipelines(first_stage: str = "hybrid", rerankers=LIFT_RERANKERS, device: str | None = None) -> dict:
    """The lift chart's pipelines by spec: BM25, dense, hybrid, then ``first_stage>>name`` for each
    reranker that loads here (lab-trained weights present; each built once). LLM rerankers are
    left out: too slow for full test sets on a CPU. When zero-shot MaxSim is among them, the
    hybrid's dense encoder keeps its token states for it (one forward pass over the corpus serves
    both; no result changes). ``device``: where every model runs (None: each stage's ``"auto"``)."""
    from .core.stage import as_stage
    from .first_stage import BM25, RRF, Dense
    from .rerankers import load_reranker
    from .specs import parse_pipeline

    shared: dict = {}
    if "maxsim" in rerankers:  # whichever of dense and hybrid encodes the corpus first keeps the tokens
        shared["dense"] = Dense(keep_token_states=True, device=device or "auto")
        shared["hybrid"] = RRF((BM25(), shared["dense"]))
    specs = ["bm25", "dense", "hybrid"]
    for name in rerankers:
        try:
            shared[name] = as_stage(load_reranker(name, device=device))
        except (OSError, ImportError):  # weights not trained here, or the family's extra not installed
            continue
        specs.append(f"{first_stage}>>{name}")
    return {spec: parse_pipeline(spec, shared, device) for spec in specs}


def _positive(text: str, what: str, instead: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive {what}, got {value} ({instead})")
    return value


def positive_int(text: str) -> int:
    """argparse type of ``--max-queries``: a positive number of queries."""
    return _positive(text, "number of queries", "leave --max-queries out to use every query")


def depth(text: str) -> int:
    """argparse type of ``--depths``: a positive number of candidates."""
    return _positive(text, "depth (candidates reranked per query)", "e.g. --depths 10 20 50 100")


def _dataset(name: str, split: str, max_queries: int | None, seed: int):
    from .data import load_dataset

    dataset = load_dataset(name, split=split)
    return dataset.sample(max_queries, seed=seed) if max_queries else dataset


def _executor(args):
    if getattr(args, "ray", None) is None:
        return None
    from .distributed.ray_executor import executor

    return executor(None if args.ray == "local" else args.ray)


def _device(args) -> str:
    """``--device`` checked before anything loads: a device that is not here is one clear error."""
    from .components.models import pick_device

    pick_device(args.device)
    return args.device


def _plan(dataset, pipelines: dict, device: str = "auto") -> None:
    """Say what a run will cost before it starts."""
    from .analysis.manifest import machine
    from .analysis.prefix import planned_items
    from .components.models import device_name

    items = planned_items(pipelines, len(dataset.queries))
    print(f"plan: {dataset.name}/{dataset.split}, {len(dataset.queries)} queries over {len(dataset.corpus)} documents; "
          f"{len(pipelines)} pipeline(s): {', '.join(pipelines)}; up to {items:,} (query, document) items to rerank "
          f"(cached ones cost a lookup); on {machine()['cpu']}, models on {device_name(device)}",
          file=sys.stderr, flush=True)


def cmd_evaluate(args) -> int:
    from .analysis.experiment import Experiment
    from .analysis.manifest import machine
    from .components.models import device_name
    from .core.files import writable
    from .specs import parse_pipeline

    if args.save_run:
        writable(args.save_run)  # refused now, not after the run
    device = _device(args)
    dataset = _dataset(args.dataset, args.split, args.max_queries, args.seed)
    metrics = list(dict.fromkeys(["ndcg@10", "recall@100", "judged@10", *args.metrics]))
    exp = Experiment(dataset, {args.pipeline: parse_pipeline(args.pipeline, device=device)}, metrics,
                     executor=_executor(args), empty_rankings=args.empty_rankings, condensed=args.judged_only,
                     trained_on=args.trained_on)
    _plan(dataset, exp.stages, device)
    start = time.perf_counter()
    exp.run()
    seconds = time.perf_counter() - start
    run, row = exp.runs[args.pipeline], exp.table()[0]
    if args.save_run:
        run.write_trec(args.save_run)
    record = {"dataset": args.dataset, "pipeline": args.pipeline, "split": args.split, "queries": row["queries"],
              "empty_rankings": row["empty_rankings"],
              "empty_rankings_counted_as": "0" if args.empty_rankings == "zero" else "skipped",
              "judged_only": args.judged_only, **{m: row[m] for m in metrics},
              **{k: v for k, v in row.items() if k.startswith(("vs_input_", "clean_", "contaminated_"))
                 or k in ("hurt", "trained_on", "memory", "contamination_note")},
              "seconds": round(seconds, 2), "model_seconds": round(run.total_seconds("model"), 2),
              "cpu": machine()["cpu"], "device": device_name(device), "stages": [c.as_dict() for c in run.costs]}
    if args.json:
        print(json.dumps(record))
        return 0
    for key, value in record.items():
        if key not in ("stages", "contamination_note"):
            print(f"{key:>28}: {value}")
    for cost in record["stages"]:
        print(f"{'stage':>28}: {cost['stage']}: model {cost['model_seconds']} s "
              f"({1000 * cost['model_median_query_seconds']:.1f} ms/query median), wall {cost['seconds']} s, "
              f"{cost['items_scored']} items" + (f", {cost['cache_hits']} cache hits" if cost.get("cache_hits") else ""))
    for line in exp.statements():
        print(f"rerank-lab: note: {line}")
    return 0


def cmd_sweep(args) -> int:
    from .analysis.manifest import machine, safe_name
    from .analysis.plots import sweep_plot
    from .analysis.sweep import sweep
    from .core.files import writable
    from .specs import parse_pipeline

    writable(args.out, folder=True)
    device = _device(args)
    dataset = _dataset(args.dataset, args.split, args.max_queries, args.seed)
    print(f"plan: sweep {args.pipeline} at depths {', '.join(map(str, args.depths))} on {dataset.name}/{dataset.split} "
          f"({len(dataset.queries)} queries; each document scored once, deeper cuts reuse the scores); "
          f"on {machine()['cpu']}", file=sys.stderr, flush=True)
    result = sweep(dataset, parse_pipeline(args.pipeline, device=device), args.depths, args.metric,
                   trained_on=args.trained_on)
    out = Path(args.out)
    plot = out / f"sweep-{dataset.name}-{safe_name(args.pipeline)}.png"
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
        clean = (f"; clean {row['clean_queries']} queries: {row['clean_delta_vs_input']:+.4f} vs input "
                 f"(p={row['clean_p']})" if row.get("clean_queries") else "")
        print(f"  depth {row['depth']:>4}: {args.metric} {row[args.metric]:.4f} ({row['gain']:+.4f}), "
              f"model {row['model_seconds_per_query']:.3f} s/query{clean}{marks}")
    print(f"wrote {plot}")
    return 0


def cmd_lift(args) -> int:
    from .analysis.experiment import Experiment
    from .analysis.plots import lift_charts
    from .core.files import atomic_write_text, writable

    from .specs import parse_pipeline

    if args.pipelines and args.rerankers:
        raise SystemExit("rerank-lab lift: give --pipelines or --rerankers, not both")
    writable(args.out, folder=True)
    device = _device(args)
    shared: dict = {}
    pipelines = {p: parse_pipeline(p, shared, device) for p in args.pipelines} if args.pipelines else \
        lift_pipelines(rerankers=args.rerankers or LIFT_RERANKERS, device=device)
    out = Path(args.out)
    experiments, sections = {}, []
    executor = _executor(args)
    for name in args.datasets:
        dataset = _dataset(name, args.split, args.max_queries, args.seed)
        exp = Experiment(dataset, pipelines, baseline="hybrid" if "hybrid" in pipelines else list(pipelines)[0],
                         executor=executor, trained_on=args.trained_on)
        _plan(dataset, exp.stages, device)
        exp.run()  # its alarms are warnings, shown once by main()
        exp.save(out / name)
        experiments[name] = exp
        sections.append(f"## {name} ({args.split}, {len(dataset.queries)} queries)\n\n{exp.markdown()}\n")
        print(sections[-1], flush=True)
    lift_charts(experiments, path=out / "lift.png")
    atomic_write_text(out / "results.md", "# Lift chart results\n\n" + "\n".join(sections))
    print(f"wrote {out / 'lift.png'} and {out / 'results.md'}")
    return 0


def training_data(text: str):
    """argparse type: ``DATASET:SPLIT``."""
    from .core.provenance import TrainingData

    try:
        return TrainingData.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trained-on", type=training_data, action="append", default=[], metavar="DATASET:SPLIT",
                        help="judgments the reranker's model learned from, for a model that does not record them "
                             "(repeat for several); test queries whose relevant documents are positives there are "
                             "reported apart as contaminated")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-queries", type=positive_int, default=None, help="evaluate a random sample of N queries")
    parser.add_argument("--seed", type=int, default=0, help="seed of the query sample")
    parser.add_argument("--device", default="auto", help="where models run: auto (the GPU when there is one, else "
                        "the CPU through OpenVINO), cpu, cuda, cuda:N")


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
    sw.add_argument("--depths", nargs="+", type=depth, default=[10, 20, 50, 100])
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
        except (DataError, ValueError, KeyError, FileNotFoundError, ImportError, ConnectionError) as exc:
            print(f"rerank-lab: error: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())

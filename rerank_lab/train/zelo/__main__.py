"""``python -m rerank_lab.train.zelo``: adapt a cross-encoder to a corpus without labels, or run the
leave-one-dataset-out test of it.

Usage::

    python -m rerank_lab.train.zelo --corpus nfcorpus --start rerank_lab/weights/lab-ce --out models/nf-zelo
    python -m rerank_lab.train.zelo --leave-one-out scifact nfcorpus --queries 60 --candidates 10 --k 4
"""
from __future__ import annotations

import argparse
import json

from .adapt import AdaptConfig, adapt, default_judge, leave_one_out
from .student import StudentConfig


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", help="the dataset whose corpus to adapt to (its queries and labels are not used)")
    parser.add_argument("--start", help="the cross-encoder folder to start from (default: the MiniLM body)")
    parser.add_argument("--out", default=None, help="where the student goes")
    parser.add_argument("--leave-one-out", nargs=2, metavar=("SOURCE", "TARGET"))
    parser.add_argument("--queries", type=int, default=AdaptConfig.queries)
    parser.add_argument("--candidates", type=int, default=AdaptConfig.candidates)
    parser.add_argument("--k", type=int, default=AdaptConfig.k, help="comparisons per document (cycle plan)")
    parser.add_argument("--budget", type=int, default=None,
                        help="judge comparisons in all; sets --queries from --candidates and --k")
    parser.add_argument("--generator", choices=["llm", "title"], default=AdaptConfig.generator)
    parser.add_argument("--llm", default=None, help="the LLM for pseudo-queries and judging (default: packaged 1.5B)")
    parser.add_argument("--student-steps", type=int, default=StudentConfig.steps)
    parser.add_argument("--source-steps", type=int, default=300)
    parser.add_argument("--device", default="auto", help="where the judges and the student run: auto (the GPU when "
                        "there is one), cpu, cuda, cuda:N")
    args = parser.parse_args(argv)
    from ..colbert import check_device

    check_device(parser, args.device)
    config = AdaptConfig(queries=args.queries, candidates=args.candidates, k=args.k, generator=args.generator,
                         generator_model=args.llm, student=StudentConfig(steps=args.student_steps, device=args.device))
    if args.budget:
        per_query = config.comparisons // config.queries
        config = AdaptConfig(**{**config.__dict__, "queries": max(1, args.budget // per_query)})
    if args.leave_one_out:
        source, target = args.leave_one_out
        print(json.dumps(leave_one_out(source, target, config=config, source_steps=args.source_steps, llm=args.llm),
                         indent=1, default=str))
        return
    if not args.corpus:
        parser.error("give --corpus (adapt) or --leave-one-out SOURCE TARGET")
    from ...components.models import MINILM
    from ...data import load_dataset

    start = args.start or MINILM
    record = adapt(load_dataset(args.corpus), default_judge(args.start, args.llm, device=args.device), start,
                   args.out or f"zelo-{args.corpus}", config)
    print(json.dumps(record["adaptation"], indent=1, default=str))


if __name__ == "__main__":
    main()

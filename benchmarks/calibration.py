"""Is the lab cross-encoder calibrated? Reliability on NFCorpus test before and after calibration.

Scores the hybrid top ``--depth`` of NFCorpus *dev* and *test* with the lab cross-encoder alone
(``load_reranker("ce", alpha=1.0, rerank_depth=None)``; scores are cached, so a rerun is quick),
reads relevance as grade > 0 (unjudged: not relevant), fits Platt and isotonic calibration on dev
only, and measures the expected calibration error on test. Last line:
``ece_raw=<sigmoid of the raw score> ece_calibrated=<the better of the two fits, chosen on dev>``.

Usage::

    python benchmarks/calibration.py                 # hybrid top 100 (about an hour of CPU on 2 cores, cold)
    python benchmarks/calibration.py --depth 20 --max-queries 100
"""
from __future__ import annotations

import argparse

from rerank_lab import hybrid, load_dataset, load_reranker
from rerank_lab.analysis.calibration import Calibrator, expected_calibration_error, pairs_of, sigmoid
from rerank_lab.analysis.manifest import machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--max-queries", type=int, default=None, help="queries per split (default: all)")
    args = parser.parse_args()
    print(machine(), flush=True)
    ce = load_reranker("ce", alpha=1.0, rerank_depth=None)
    pairs = {}
    for split in ("dev", "test"):
        dataset = load_dataset("nfcorpus", split=split)
        if args.max_queries:
            dataset = dataset.sample(args.max_queries, seed=0)
        run = (hybrid() % args.depth >> ce)(dataset)
        pairs[split] = pairs_of(run, dataset.qrels)
        print(f"{split}: {len(pairs[split][0])} (query, document) pairs, {pairs[split][1].mean():.3f} relevant", flush=True)
    (dev_s, dev_l), (test_s, test_l) = pairs["dev"], pairs["test"]
    raw = expected_calibration_error(sigmoid(test_s), test_l)
    fitted = {m: Calibrator(m).fit(dev_s, dev_l) for m in ("platt", "isotonic")}
    on_dev = {m: expected_calibration_error(c.predict(dev_s), dev_l) for m, c in fitted.items()}
    on_test = {m: expected_calibration_error(c.predict(test_s), test_l) for m, c in fitted.items()}
    chosen = min(on_dev, key=on_dev.get)  # chosen on dev, never on test
    for m in fitted:
        print(f"{m:>9}: ECE dev {on_dev[m]:.4f}, test {on_test[m]:.4f}" + ("  (chosen on dev)" if m == chosen else ""))
    print(f"ece_raw={raw:.4f} ece_calibrated={on_test[chosen]:.4f}")


if __name__ == "__main__":
    main()

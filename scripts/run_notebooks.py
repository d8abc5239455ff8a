"""Execute the notebooks top to bottom in fresh kernels and save them with clean outputs (no progress
widgets, no widget state): how the committed outputs are made, and how CI smoke-runs them.

A full run saves each notebook that succeeds and records its wall time and machine in
``notebooks/runtimes.json``; ``--smoke`` (a few queries, the small LLM) saves nothing. The kernel
sees this checkout's package first, ``RERANK_LAB_PROGRESS=none`` and quiet third-party logs.
Caches persist in ``RERANK_LAB_CACHE``, so a rerun costs what changed.

Usage::

    python scripts/run_notebooks.py                    # every notebook, full runs (hours on 2 cores)
    python scripts/run_notebooks.py 00 03              # by number or name
    python scripts/run_notebooks.py --smoke 09         # a smoke run, nothing saved
    python scripts/run_notebooks.py --smoke --copy-to /tmp/smoke 09   # ... keeping the executed copy to read
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rerank_lab.notebook import run_notebooks  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names or number prefixes (default: all)")
    parser.add_argument("--smoke", action="store_true", help="a few queries each; nothing is saved")
    parser.add_argument("--timeout", type=int, default=None, help="seconds one cell may take (default: no limit)")
    parser.add_argument("--no-save", action="store_true", help="execute only (a full run's check)")
    parser.add_argument("--copy-to", default=None, help="also write every executed copy here (smoke and failed runs too)")
    args = parser.parse_args(argv)
    repo = Path(__file__).resolve().parents[1]
    os.environ.setdefault("RERANK_LAB_DATA", str(repo.parent / "shared" / "beir"))
    runs = run_notebooks(args.names, smoke=args.smoke, save=not args.no_save, timeout=args.timeout,
                         record=not args.no_save, copy_to=args.copy_to)
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())

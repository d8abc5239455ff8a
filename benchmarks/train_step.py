"""One cross-encoder training step in fp32 and under bf16 autocast, on this CPU.

The training recipes use bf16 autocast only where the hardware has bf16 kernels
(:func:`rerank_lab.components.encoder.resolve_bf16`); this shows why. A step is forward, backward
and AdamW on the lab cross-encoder, ``--groups`` groups of 8 pairs at ``--max-length`` tokens (the
CPU recipe's shape). Prints the CPU, the seconds per step, and last ``bf16_slowdown=<bf16 s / fp32 s>``
(above 1: bf16 is slower here).

Usage::

    python benchmarks/train_step.py              # about 8 minutes on 2 cores without bf16 kernels
"""
from __future__ import annotations

import argparse
import time

from rerank_lab.analysis.manifest import machine
from rerank_lab.components.encoder import cpu_has_bf16
from rerank_lab.components.lab_weights import LAB_CE_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=2, help="steps timed per precision and round")
    args = parser.parse_args()
    import torch
    from transformers import AutoModelForSequenceClassification

    print(machine(), f"bf16 kernels: {cpu_has_bf16()}", flush=True)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(LAB_CE_DIR)
    ids = torch.randint(1000, 20000, (8 * args.groups, args.max_length))
    mask = torch.ones_like(ids)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    seconds = {False: 0.0, True: 0.0}
    for bf16 in (False, True, False, True):  # alternate, so other load weighs on both
        start = time.perf_counter()
        for _ in range(args.steps):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(input_ids=ids, attention_mask=mask).logits.float()
            logits.logsumexp(0).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
        seconds[bf16] += time.perf_counter() - start
    per_step = {k: v / (2 * args.steps) for k, v in seconds.items()}
    print(f"fp32 {per_step[False]:.2f} s/step, bf16 autocast {per_step[True]:.2f} s/step")
    print(f"bf16_slowdown={per_step[True] / per_step[False]:.2f}")


if __name__ == "__main__":
    main()

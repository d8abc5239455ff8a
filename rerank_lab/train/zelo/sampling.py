"""Which pairs to ask a judge about, under a budget of comparisons per query.

zELO (arXiv:2509.12541) fits one score per document from a *sparse* graph of pairwise votes:
every document takes part in about k comparisons, n·k/2 in all instead of n(n-1)/2. Its plans
are unions of random cycles: each random Hamiltonian cycle adds degree 2 to every document and
keeps the graph connected (a fit then ranks every document against every other, through chains),
so k/2 cycles give a k-regular graph with no isolated part. Random pairs are the baseline plan.
Both orders of a pair count as one comparison (the judge asks both and averages: position bias cancels).

Usage::

    cycle_plan(n=20, k=4, seed=0)        # 40 pairs, every document in 4 of them
    random_plan(n=20, budget=40, seed=0)
"""
from __future__ import annotations

import random

Pair = tuple[int, int]


def _key(i: int, j: int) -> Pair:
    return (i, j) if i < j else (j, i)


def cycle_plan(n: int, k: int = 4, seed: int = 0, attempts: int = 50) -> list[Pair]:
    """About ``n*k/2`` distinct pairs from ``ceil(k/2)`` random Hamiltonian cycles, each drawn (up to
    ``attempts`` times) so that it repeats no earlier edge: every document then takes part in
    exactly k comparisons (k even), or k + 1 for the odd top-up."""
    if n < 2 or k < 1:
        return []
    rng = random.Random(seed)
    target = min(n * (n - 1) // 2, (n * k + 1) // 2)
    pairs: set[Pair] = set()
    for _ in range((k + 1) // 2):
        if len(pairs) >= target:
            break
        best: list[Pair] = []
        for _ in range(attempts):
            order = list(range(n))
            rng.shuffle(order)
            cycle = [_key(a, b) for a, b in zip(order, order[1:] + order[:1]) if a != b]
            fresh = [e for e in dict.fromkeys(cycle) if e not in pairs]
            if len(fresh) > len(best):
                best = fresh
            if len(fresh) == len(cycle):
                break
        pairs.update(best[: target - len(pairs)])
    degree = [0] * n
    for a, b in pairs:
        degree[a] += 1
        degree[b] += 1
    while len(pairs) < target:  # top up between the least-compared documents
        order = sorted(range(n), key=lambda x: (degree[x], rng.random()))
        a, b = next((a, b) for a in order for b in order if a != b and _key(a, b) not in pairs)
        pairs.add(_key(a, b))
        degree[a] += 1
        degree[b] += 1
    return sorted(pairs)


def random_plan(n: int, budget: int, seed: int = 0) -> list[Pair]:
    """``budget`` distinct random pairs (all of them when the budget covers every pair)."""
    every = [(i, j) for i in range(n) for j in range(i + 1, n)]
    if budget >= len(every):
        return every
    return sorted(random.Random(seed).sample(every, budget))


def is_connected(n: int, pairs: list[Pair]) -> bool:
    """Whether the comparison graph joins every document (a fit can then order all of them)."""
    if n <= 1:
        return True
    neighbours: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in pairs:
        neighbours[a].add(b)
        neighbours[b].add(a)
    seen, todo = {0}, [0]
    while todo:
        for nxt in neighbours[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return len(seen) == n

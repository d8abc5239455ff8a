"""The LLM reranker families side by side with shared settings: the comparison notebook 04 draws
and ``scripts/llm_study.py`` runs at scale (same model, candidates and passage cut for every family,
so any difference is the method's).

Usage::

    methods = llm_methods(StudySettings(window=20, stride=10, words=50))
    pipelines = {"hybrid": first, **{n: first >> m for n, m in methods.items()}}
    study = Experiment(dataset, pipelines, baseline="hybrid").run()
    study_rows(study)                  # per method: nDCG@10, Δ [95% CI], p (raw, Holm), calls, tokens, seconds
    study_takeaways(study, echo, shuffles, windows, model, ablation_model, depth=20)   # the lessons, as lines
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from ..llm.packaged import DEFAULT_GGUF


@dataclass(frozen=True)
class StudySettings:
    """What the families share: the model, the listwise window and stride, the passage cut, and
    PRP-Sliding's passes (each pass is n − 1 comparisons, both orders)."""

    model: str = DEFAULT_GGUF
    window: int = 20
    stride: int = 10
    words: int = 50
    pair_passes: int = 1


def llm_methods(settings: StudySettings = StudySettings()) -> dict:
    """``{name: scorer}``: listwise (RankGPT), FIRST raw and calibrated, pointwise yes/no, pairwise (PRP)."""
    from ..rerankers.first import First
    from ..rerankers.listwise import Listwise
    from ..rerankers.llm_pointwise import PointwiseLLM
    from ..rerankers.pairwise import Pairwise

    common = dict(model=settings.model, max_passage_words=settings.words)
    windows = dict(window=settings.window, stride=settings.stride)
    return {"listwise": Listwise(**common, **windows),
            "first (raw)": First(**common, **windows, calibrate=False),
            "first": First(**common, **windows),
            "llm-pointwise": PointwiseLLM(**common),
            "pairwise": Pairwise(**common, method="sliding", passes=settings.pair_passes)}


def study_rows(study, baseline: str = "hybrid", metric: str = "ndcg@10") -> list[dict]:
    """One row per pipeline of a run study :class:`~rerank_lab.analysis.experiment.Experiment`: the
    metric, its difference against ``baseline`` with the 95% interval and raw / Holm p, and what a
    query cost (LLM calls, prompt and completion tokens, model seconds)."""
    rows = []
    for row in study.table():
        q = max(row["queries"], 1)
        rows.append({"method": row["name"], "nDCG@10": row[metric], "Δ vs " + baseline: row.get(f"delta_{metric}"),
                     "95% CI": row.get("ci95"), "p": row.get("p_raw"), "p (Holm)": row.get("p_holm"),
                     "LLM calls/query": round(row.get("llm_calls", 0) / q, 1),
                     "prompt tokens/query": round(row.get("prompt_tokens", 0) / q),
                     "completion tokens/query": round(row.get("completion_tokens", 0) / q, 1),
                     "model s/query": round(row["model_seconds"] / q, 2)})
    return rows


def study_takeaways(study, echo: Mapping[str, float], shuffles: Mapping[str, float], windows: Sequence[Mapping],
                    model: str, ablation_model: str, depth: int, baseline: str = "hybrid",
                    metric: str = "ndcg@10") -> list[str]:
    """The study's lessons, worded from its numbers: which method is best and whether any difference
    from ``baseline`` is detectable (Holm over the study's comparisons) with how large a change these
    queries could miss; calibration's effect on FIRST; cost per method; position bias (``echo``:
    share of top-5 slots keeping their input position; ``shuffles``: FIRST's metric after each input
    order, ``"hybrid order"`` and ``"shuffle N"``); and the window sweep (``windows``: rows with
    window, stride, windows/query, nDCG@10, model s/query)."""
    from .significance import against_baseline, format_p

    rows = {r["method"]: r for r in study_rows(study, baseline, metric)}
    differences = against_baseline(study, metric)
    llm = [n for n in rows if n != baseline]
    n_queries = study.table()[0]["queries"]
    best = max(llm, key=lambda n: rows[n]["nDCG@10"])
    up = [n for n in llm if differences[n].direction == "higher"]
    down = [n for n in llm if differences[n].direction == "lower"]
    loose = [n for n in llm if not differences[n].detected and differences[n].ci
             and (differences[n].ci[0] > 0 or differences[n].ci[1] < 0)]
    widest = max(llm, key=lambda n: (differences[n].ci[1] - differences[n].ci[0]) if differences[n].ci else 0.0)
    lines = [
        f"On {n_queries} SciFact test queries (hybrid top {depth}) with {model}, **{best}** scores highest "
        f"({rows[best]['nDCG@10']:.4f} against {baseline}'s {rows[baseline]['nDCG@10']:.4f}): "
        f"{differences[best].phrase()}. "
        + (f"Detectably above {baseline}: {', '.join(up)}. " if up else f"No method is detectably above {baseline}. ")
        + (f"Detectably below it: {', '.join(down)}." if down else "None is detectably below it either."),
        f"{n_queries} queries have little power: the widest interval ({widest}) spans "
        f"[{differences[widest].ci[0]:+.3f}, {differences[widest].ci[1]:+.3f}], so differences of that size can go "
        f"undetected. " + ("; ".join(f"{n}'s uncorrected interval [{differences[n].ci[0]:+.3f}, {differences[n].ci[1]:+.3f}] "
                                    f"excludes 0 (p {format_p(differences[n].p)}) but not after Holm's correction over "
                                    f"{len(llm)} comparisons (Holm p {format_p(differences[n].p_holm)})" for n in loose)
                          + ": a lead for a larger study, not a finding." if loose else ""),
    ]
    if "first" in rows and "first (raw)" in rows:
        lines.append(f"Calibration moves FIRST from {rows['first (raw)']['nDCG@10']:.4f} (raw) to "
                     f"{rows['first']['nDCG@10']:.4f} for {rows['first']['model s/query'] - rows['first (raw)']['model s/query']:+.2f} "
                     f"model s/query (both against {baseline}: raw {differences['first (raw)'].verdict()}, calibrated "
                     f"{differences['first'].verdict()}).")
    cheapest = min(llm, key=lambda n: rows[n]["model s/query"])
    cost = [f"**{cheapest}** is the cheapest LLM method ({rows[cheapest]['model s/query']:.2f} model s/query)"]
    if "listwise" in rows and "first (raw)" in rows:
        ratio = rows["listwise"]["model s/query"] / max(rows["first (raw)"]["model s/query"], 1e-9)
        cost.append(f"listwise costs {ratio:.2f}× raw FIRST on the same prompt, the price of decoding "
                    f"{rows['listwise']['completion tokens/query']:.0f} tokens instead of reading one position")
    if "pairwise" in rows and "llm-pointwise" in rows:
        cost.append(f"pairwise makes {rows['pairwise']['LLM calls/query']:.0f} LLM calls per query against pointwise's "
                    f"{rows['llm-pointwise']['LLM calls/query']:.0f}")
    lines.append("; ".join(cost) + ".")
    if echo:
        top = max(echo, key=echo.get)
        lines.append(f"**{top}** keeps the most documents where the input had them ({echo[top]:.0%} of top-5 slots): "
                     + ("it mostly echoes the first stage." if echo[top] > 0.5 else "no method simply echoes its input."))
    if shuffles:
        kept = shuffles.get("hybrid order")
        others = [v for k, v in shuffles.items() if k != "hybrid order"]
        if kept is not None and others:
            lines.append(f"FIRST on shuffled inputs ({ablation_model}): nDCG@10 {min(others):.4f}–{max(others):.4f} against "
                         f"{kept:.4f} on the hybrid order, on a handful of queries: "
                         + ("above every shuffle, a hint that it leans on the input order (too few queries to test)."
                            if kept > max(others) else "no sign that it leans on the input order."))
    if windows:
        sweep = "; ".join(f"w={w['window']} s={w['stride']} ({w['windows/query']} window{'s' if w['windows/query'] != 1 else ''}) "
                          f"{w['nDCG@10']:.4f} at {w['model s/query']:.1f} model s/query" for w in windows)
        costs = [w["model s/query"] for w in windows]
        lines.append(f"Window sweep ({ablation_model}, FIRST): {sweep}"
                     + (": more, shorter windows cost more (instructions and overlaps are read again)."
                        if costs == sorted(costs) else "."))
    lines.append("Online, the same code runs RankZephyr-7B or GPT-4 through `backend=\"openai\"` (any OpenAI-compatible "
                 "server, e.g. vLLM with `--enable-prefix-caching`), where the papers' lifts live.")
    return lines

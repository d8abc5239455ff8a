"""Plots: the lift chart, the quality–cost Pareto frontier, depth curves, rank movement,
MaxSim token heatmaps.

Every function draws on a matplotlib Axes (new figure when none is given), returns the
Figure, and saves a PNG when ``path`` is given. Importing this module leaves matplotlib's
backend alone (a headless machine falls back to Agg by itself).

Usage::

    lift_chart({"BM25": 0.676, "dense": 0.645, "hybrid": 0.714, "hybrid >> ce": 0.73}, path="lift.png")
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt

from ..core.files import atomic_path

_COLORS = ["#9aa5b1", "#7b8794", "#3e7cb1", "#f29e4c", "#e4572e", "#76b041", "#8e6c8a", "#17becf"]


def _figure(ax, size=(7, 4)):
    if ax is None:
        fig, ax = plt.subplots(figsize=size, dpi=110)
    return ax.figure, ax


def _save(fig, path: str | Path | None):
    if path is not None:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, bbox_inches="tight", format="png")
    return fig


@dataclass(frozen=True)
class CleanBar:
    """A trained reranker's numbers on the clean queries (no relevant document seen in training)."""

    queries: int
    value: float | None = None
    delta: float | None = None      # against its own input on the same queries
    p: float | None = None          # Holm-corrected (the family the table states)


@dataclass(frozen=True)
class LiftPanel:
    """What one dataset's lift chart shows: a bar per pipeline, the Holm p of each reranking
    bar's change against its input, the clean-query bars of trained rerankers, the alarms."""

    values: Mapping[str, float]
    p: Mapping[str, float] = field(default_factory=dict)
    clean: Mapping[str, CleanBar] = field(default_factory=dict)
    hurt: Sequence[str] = ()
    memory: Sequence[str] = ()
    queries: int | None = None


def lift_panel(experiment, metric: str | None = None) -> LiftPanel:
    """The :class:`LiftPanel` of an :class:`~rerank_lab.analysis.experiment.Experiment`."""
    metric = metric or experiment.metrics[0]
    rows = experiment.table()
    clean = {r["name"]: CleanBar(r["clean_queries"], r.get(f"clean_{metric}"), r.get("clean_delta_vs_input"),
                                 r.get("clean_p")) for r in rows if "clean_queries" in r}
    return LiftPanel({r["name"]: r[metric] for r in rows}, {n: p for n, (_, p) in experiment.versus_input().items()},
                     clean, list(experiment.hurt()), experiment.memory(), len(experiment.dataset.queries))


def lift_chart(values: "Mapping[str, float] | LiftPanel", metric: str = "nDCG@10", title: str | None = None,
               path: str | Path | None = None, ax=None, hurt=(), level: float = 0.05):
    """One bar per pipeline, each annotated with its value and its lift: over the stage it
    builds on for ``"X>>Y"`` when X has a bar (every reranker against its first stage),
    otherwise over the bar before. Given a :class:`LiftPanel` (:func:`lift_panel`), a reranking
    bar's lift is marked ``*`` when its Holm p is below ``level`` and ``n.s.`` otherwise, and a
    trained reranker gets a second, lighter bar: the same pipeline on the clean queries only,
    with its change against its input there. Pipelines that hurt (reranking significantly below
    its own input) are hatched with a red edge and marked ⚠ hurt; a lift from memory ⚠ memory."""
    panel = values if isinstance(values, LiftPanel) else LiftPanel(values, hurt=tuple(hurt))
    labels, scores = list(panel.values), [float(v) for v in panel.values.values()]
    bases = [_base_index(labels, i) for i in range(len(labels))]
    fig, ax = _figure(ax, (max(5, 1.7 * len(labels)), 4.4 if panel.clean else 4))
    width = 0.8
    top = max(scores, default=1.0)
    for i, (label, score) in enumerate(zip(labels, scores)):
        paired = label in panel.clean
        w = width / 2 if paired else width
        x = i - w / 2 if paired else i
        bar = ax.bar(x, score, w, color=_COLORS[i % len(_COLORS)])[0]
        text = f"{score:.3f}"
        if bases[i] is not None:
            text += f"\n{score - scores[bases[i]]:+.3f}" + _mark(panel.p.get(label), level)
        if label in panel.hurt:
            bar.set_hatch("//")
            bar.set_edgecolor("#c0392b")
            bar.set_linewidth(2)
            text += "\n⚠ hurt"
        if label in panel.memory:
            text += "\n⚠ memory"
        ax.annotate(text, (x, score), ha="center", va="bottom", fontsize=8.5, xytext=(0, 2), textcoords="offset points")
        if paired:
            _clean_bar(ax, i + w / 2, w, panel.clean[label], _COLORS[i % len(_COLORS)], level)
    ax.set_xticks(range(len(labels)), labels, rotation=15 if len(labels) > 4 else 0,
                  ha="right" if len(labels) > 4 else "center")
    ax.set_ylabel(metric)
    ax.set_ylim(0, top * (1.32 if panel.clean else 1.22) if top > 0 else 1)
    queries = f" ({panel.queries} queries)" if panel.queries else ""
    ax.set_title((title or f"Retrieve, then rerank: {metric}") + queries, fontsize=10)
    if panel.p or panel.clean:
        note = "* Holm p<%g against the reranker's own input; n.s. otherwise" % level
        if panel.clean:
            note += "\nlight bar: the same pipeline on clean queries (no relevant document seen in training)"
        ax.text(0.0, -0.2 if len(labels) > 4 else -0.13, note, transform=ax.transAxes, fontsize=7.5, color="#52606d",
                va="top")
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def _mark(p: float | None, level: float) -> str:
    if p is None:
        return ""
    return " *" if p < level else " n.s."


def _clean_bar(ax, x: float, width: float, clean: CleanBar, color: str, level: float) -> None:
    if not clean.queries or clean.value is None:
        ax.annotate("no clean\nquery", (x, 0.02), ha="center", va="bottom", fontsize=7.5, color="#52606d")
        return
    ax.bar(x, clean.value, width, color=color, alpha=0.4, hatch="..", edgecolor=color)
    text = f"clean n={clean.queries}\n{clean.value:.3f}"
    if clean.delta is not None:
        text += f"\n{clean.delta:+.3f}" + _mark(clean.p, level)
    ax.annotate(text, (x, clean.value), ha="center", va="bottom", fontsize=7.5, xytext=(0, 2),
                textcoords="offset points", color="#323f4b")


def _base_index(labels: list[str], i: int) -> int | None:
    if ">>" in labels[i]:
        base = labels[i].rsplit(">>", 1)[0].strip()
        for candidate in (base, base.split("%")[0].strip()):
            if candidate in labels[:i]:
                return labels.index(candidate)
    return i - 1 if i else None


def lift_charts(panels: Mapping[str, object], metric: str = "nDCG@10", path: str | Path | None = None,
                hurt: Mapping[str, Sequence[str]] | None = None):
    """Side-by-side lift charts, one per dataset: ``panels`` maps a dataset to an Experiment,
    a :class:`LiftPanel` or plain values (``hurt``: dataset -> pipelines to flag, for plain values)."""
    panels = {name: lift_panel(p) if hasattr(p, "verdicts") else p for name, p in panels.items()}
    widest = max(len(p.values if isinstance(p, LiftPanel) else p) for p in panels.values())
    fig, axes = plt.subplots(1, len(panels), figsize=(max(5, 1.8 * widest) * len(panels), 4.8),
                             dpi=110, squeeze=False)
    for ax, (dataset, panel) in zip(axes[0], panels.items()):
        lift_chart(panel, metric, title=dataset, ax=ax, hurt=(hurt or {}).get(dataset, ()))
    fig.tight_layout()
    return _save(fig, path)


def pareto_frontier(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (cost, quality) not dominated by a cheaper, better one."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    frontier, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            frontier.append(i)
            best = points[i][1]
    return frontier


def pareto_plot(rows: Sequence[Mapping], quality: str = "ndcg@10",
                latencies: Sequence[str] = ("model_median_ms", "model_p95_ms"), path: str | Path | None = None,
                cpu: str | None = None, level: float = 0.05):
    """Quality against per-query latency; the frontier is drawn and its points labelled.

    ``rows``: dicts with ``name``, ``quality`` and each latency column (e.g. ``Experiment.table()``,
    whose ``model_*`` columns are the cost with empty caches and ``wall_*`` the time this run spent).
    ``cpu``: named in the axis label (timings are machine-specific). Rows carrying a Holm p against
    the experiment's baseline (``p_holm``) are marked ``*`` (below ``level``) or ``n.s.`` beside their name.
    """
    fig, axes = plt.subplots(1, len(latencies), figsize=(6.2 * len(latencies), 4.4), dpi=110, squeeze=False)
    marked = any(r.get("p_holm") is not None for r in rows)
    for ax, column in zip(axes[0], latencies):
        points = [(float(r[column]), float(r[quality])) for r in rows]
        front = pareto_frontier(points)
        for i, (row, (x, y)) in enumerate(zip(rows, points)):
            on = i in front
            ax.scatter(x, y, s=60 if on else 30, color=_COLORS[2] if on else _COLORS[0], zorder=3)
            ax.annotate(row["name"] + _mark(row.get("p_holm"), level), (x, y), fontsize=8, xytext=(4, 4),
                        textcoords="offset points", color="black" if on else "gray")
        fx = [points[i] for i in front]
        ax.plot([p[0] for p in fx], [p[1] for p in fx], "--", color=_COLORS[2], zorder=2)
        ax.set_xscale("log")
        clock = "model latency (empty caches)" if column.startswith("model_") else \
            "wall time (as spent, caches warm)" if column.startswith("wall_") else column
        stat = "p95" if "p95" in column else "median" if "median" in column else ""
        ax.set_xlabel(f"{stat} {clock} per query, ms (log)" + (f"\n{cpu}" if cpu else ""))
        ax.set_ylabel(quality)
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    title = "Quality–latency frontier"
    if marked:
        baseline = next((r["name"] for r in rows if r.get("p_holm") is None and r.get(f"delta_{quality}", 0) is None),
                        None)
        title += (f"\n* Holm p<{level:g} against {baseline or 'the baseline'}; n.s. otherwise")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def depth_curves(curves: Mapping[str, Mapping[int, float]], quality: str = "nDCG@10",
                 path: str | Path | None = None, ax=None):
    """Quality against reranking depth k, one line per reranker."""
    fig, ax = _figure(ax)
    for i, (name, curve) in enumerate(curves.items()):
        ks = sorted(curve)
        ax.plot(ks, [curve[k] for k in ks], "o-", color=_COLORS[(i + 2) % len(_COLORS)], label=name)
    ax.set_xscale("log")
    ax.set_xlabel("reranking depth k")
    ax.set_ylabel(quality)
    ax.legend()
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def plot_explanation(explanation, ax=None, max_doc_tokens: int | None = 80, title: str | None = None,
                     path: str | Path | None = None):
    """Heatmap of query x document token cosine (a late-interaction ``Explanation``), each query
    token's MaxSim match boxed and its contribution written beside it."""
    e = explanation
    sim, doc_tokens, best = e.similarity, e.doc_tokens, e.best
    if max_doc_tokens is not None and len(doc_tokens) > max_doc_tokens:
        cut = max(max_doc_tokens, int(best.max()) + 1)  # keep every best match visible
        sim, doc_tokens = sim[:, :cut], doc_tokens[:cut]
    if ax is None:
        _, ax = plt.subplots(figsize=(min(0.22 * len(doc_tokens) + 3, 24), 0.3 * len(e.query_tokens) + 1.5))
    image = ax.imshow(sim, aspect="auto", cmap="viridis", vmin=min(0.0, float(sim.min())), vmax=1.0)
    ax.set_yticks(range(len(e.query_tokens)), [f"{t}  {c:+.2f}" for t, c in zip(e.query_tokens, e.contributions)],
                  fontsize=7)
    ax.set_xticks(range(len(doc_tokens)), doc_tokens, rotation=90, fontsize=6)
    for i, j in enumerate(best):
        if j < sim.shape[1]:
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.2))
    ax.set_xlabel("document tokens (red box: each query token's MaxSim match)")
    ax.set_ylabel("query tokens  (contribution)")
    ax.set_title(title or f"MaxSim score {e.score:.3f}")
    ax.figure.colorbar(image, ax=ax, fraction=0.02, pad=0.01, label="cosine")
    return _save(ax.figure, path)


def rank_movement(before, after, query_id: str, k: int = 7, relevant=None, labels=None,
                  names: tuple[str, str] = ("first stage", "reranked"), title: str | None = None,
                  path: str | Path | None = None, ax=None):
    """Where a reranker moved documents: a slope chart from ``before``'s top ``k`` to ``after``'s
    top ``k`` for one query (two Runs). ``relevant``: doc id -> grade (e.g. ``dataset.qrels[q]``),
    drawn in colour; ``labels``: doc id -> short text shown beside each end."""
    relevant = relevant or {}
    labels = labels or {}
    left, right = before.doc_ids(query_id, k), after.doc_ids(query_id, k)
    fig, ax = _figure(ax, (8, 0.45 * k + 1.6))
    full_before = before.doc_ids(query_id)
    for doc in dict.fromkeys(left + right):
        y0 = left.index(doc) if doc in left else (full_before.index(doc) if doc in full_before else k)
        y1 = right.index(doc) if doc in right else k
        grade = relevant.get(doc, 0)
        color = _COLORS[4] if grade > 0 else _COLORS[0]
        ax.plot([0, 1], [min(y0, k), min(y1, k)], "-o", color=color, lw=2.5 if grade > 0 else 1.2, zorder=3 if grade else 2)
        text = labels.get(doc, doc)
        if doc in left:
            ax.annotate(f"{text}  ", (0, y0), ha="right", va="center", fontsize=8, color=color)
        if doc in right:
            ax.annotate(f"  {text}" + (f"  (rel {grade})" if grade else ""), (1, y1), ha="left", va="center",
                        fontsize=8, color=color)
        if y0 >= k and doc in right:
            ax.annotate(f"from rank {y0 + 1}" if y0 < len(full_before) else "new", (0.02, k), fontsize=7, color=color)
    ax.set_ylim(k + 0.5, -0.7)
    ax.set_xlim(-0.9, 1.9)
    ax.set_yticks(range(k), [f"#{i + 1}" for i in range(k)])
    ax.set_xticks([0, 1], list(names))
    ax.spines[["top", "right", "bottom"]].set_visible(False)
    ax.set_title(title or f"query {query_id}: where reranking moved the top {k}")
    return _save(fig, path)


def tuning_frontier(record: Mapping, path: str | Path | None = None, ax=None, cpu: str | None = None):
    """The settings a cost-aware tuner chose from (``tuning.json``): mean nDCG@10 on the tuning
    splits against model seconds per query, the tolerance band under the best, the choice ringed."""
    rows = record["frontier"]
    fig, ax = _figure(ax, (7, 4.2))
    best, chosen = record["best"], record["chosen_row"]
    ax.axhspan(best["mean"] - record["tolerance"], best["mean"], color=_COLORS[5], alpha=0.15,
               label=f"within {record['tolerance']} of the best")
    for row in rows:
        x, y = row["model_seconds_per_query"], row["mean"]
        ax.scatter(x, y, s=30, color=_COLORS[2])
        settings = ",".join(f"{v}" for v in row["settings"].values() if v is not None) or "truncate"
        ax.annotate(f"{settings} @{row['rerank_depth']} a={row['alpha']:g}", (x, y), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.scatter(chosen["model_seconds_per_query"], chosen["mean"], s=160, facecolors="none", edgecolors=_COLORS[4],
               linewidths=2, label="chosen (cheapest in the band)")
    ax.set_xscale("log")
    ax.set_xlabel("model seconds per query (empty caches, log)" + (f"\n{cpu}" if cpu else ""))
    ax.set_ylabel("mean nDCG@10 over the tuning splits")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def training_curve(curve: Sequence[float], window: int = 25, xlabel: str = "step", ylabel: str = "loss",
                   title: str | None = None, path: str | Path | None = None, ax=None):
    """A training loss per step with its moving average over ``window`` steps."""
    import numpy as np

    values = np.asarray(curve, dtype=float)
    fig, ax = _figure(ax, (6, 3.5))
    ax.plot(values, alpha=0.3, label="per step", color=_COLORS[2])
    window = max(1, min(window, len(values)))
    if len(values):
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window - 1, len(values)), smooth, label=f"mean of {window}", color=_COLORS[4])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "training loss")
    ax.legend()
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def sweep_plot(sweep, path: str | Path | None = None, ax=None):
    """A depth sweep (``analysis.experiment.sweep``): the metric against reranking depth over the
    first stage's level, the peak and the smallest depth reaching 90% of its gain marked, and the
    model seconds per query on a second axis."""
    rows = sweep.rows
    depths = [r["depth"] for r in rows]
    fig, ax = _figure(ax, (7, 4))
    ax.plot(depths, [r[sweep.metric] for r in rows], "o-", color=_COLORS[2], label=sweep.pipeline)
    ax.axhline(sweep.first_stage, ls="--", color=_COLORS[0], label="first stage alone")
    peak = next(r for r in rows if r["peak"])
    ax.scatter([peak["depth"]], [peak[sweep.metric]], s=140, facecolors="none", edgecolors=_COLORS[4], linewidths=2,
               label="peak" + (" (then falls)" if sweep.peaks_and_falls else ""))
    ax.axvline(sweep.depth_90, ls=":", color=_COLORS[5], label=f"90% of the peak gain at k={sweep.depth_90}")
    ax.set_xscale("log")
    ax.set_xlabel("reranking depth k")
    ax.set_ylabel(sweep.metric)
    twin = ax.twinx()
    twin.plot(depths, [r["model_seconds_per_query"] for r in rows], "s:", color="black", alpha=0.5)
    twin.set_ylabel("model seconds per query (empty caches)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"{sweep.dataset}: how deep to rerank")
    ax.spines[["top"]].set_visible(False)
    return _save(fig, path)


def reliability_diagram(curves: Mapping[str, object], path: str | Path | None = None, ax=None,
                        title: str = "Are the scores probabilities?", counts: bool = True):
    """Reliability curves (``analysis.calibration.Reliability`` per name): mean predicted probability
    against the observed share of relevant documents per bin, the diagonal being perfect, ECE in the
    legend. ``counts``: each point is labelled with the number of pairs in its bin (a bin of 3 pairs
    says little), and a panel underneath shows how the pairs spread over the bins."""
    import numpy as np

    if ax is None and counts:
        fig, (ax, hist) = plt.subplots(2, 1, figsize=(5.2, 6.4), dpi=110, sharex=True,
                                       gridspec_kw={"height_ratios": [3, 1]})
    else:
        fig, ax = _figure(ax, (5, 5))
        hist = None
    ax.plot([0, 1], [0, 1], "--", color=_COLORS[0], label="perfectly calibrated")
    names = list(curves)
    for i, (name, curve) in enumerate(curves.items()):
        color = _COLORS[(i + 2) % len(_COLORS)]
        ax.plot(curve.predicted, curve.observed, "o-", color=color, label=f"{name} (ECE {curve.ece:.3f})")
        if counts:
            for x, y, n in zip(curve.predicted, curve.observed, curve.counts):
                ax.annotate(f"{int(n)}", (x, y), fontsize=6.5, color=color, xytext=(3, -9), textcoords="offset points")
        if hist is not None:
            edges = np.asarray(curve.edges)
            width = (edges[1] - edges[0]) / (len(names) + 1)
            left = edges[np.clip(np.digitize(curve.predicted, edges[1:-1]), 0, len(edges) - 2)]  # each point's bin
            hist.bar(left + width * (i + 0.5), curve.counts, width, color=color, align="edge")
    ax.set_ylabel("observed share relevant")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title(title + ("\n(numbers: pairs per bin)" if counts else ""), fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    if hist is not None:
        hist.set_yscale("log")
        hist.set_ylabel("pairs (log)")
        hist.set_xlabel("predicted probability of relevance")
        hist.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
    else:
        ax.set_xlabel("predicted probability of relevance")
    return _save(fig, path)


def precision_coverage(curves: Mapping[str, object], path: str | Path | None = None, ax=None, marks=(0.5,),
                       title: str = "Keep what is probably relevant: precision against what is kept"):
    """One line per name (``analysis.calibration.PrecisionCoverage``): as the probability threshold
    falls, the share of relevant documents kept (recall of the candidates' relevant ones) rises
    and the precision of what is kept falls; thresholds in ``marks`` are ringed and labelled."""
    fig, ax = _figure(ax, (6, 4))
    for i, (name, curve) in enumerate(curves.items()):
        color = _COLORS[(i + 2) % len(_COLORS)]
        ax.plot(curve.coverage, curve.precision, "-", color=color, label=name)
        for p in marks:
            point = curve.at(p)
            if point is not None:
                ax.scatter([point[1]], [point[2]], s=50, facecolors="none", edgecolors=color, linewidths=1.5, zorder=3)
                ax.annotate(f"P≥{p:g}", (point[1], point[2]), fontsize=7.5, color=color, xytext=(4, 4),
                            textcoords="offset points")
    ax.set_xlabel("share of the candidates' relevant documents kept")
    ax.set_ylabel("precision of the kept documents")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def interval_plot(differences: Mapping[str, object], reference: str, metric: str = "nDCG@10",
                  title: str | None = None, path: str | Path | None = None, ax=None):
    """Each :class:`~rerank_lab.analysis.significance.Difference` against ``reference`` as a point with
    its 95% interval; filled where the test detects a difference, hollow where it does not, and a
    zero line: the picture of "which of these differences are real"."""
    names = list(differences)
    fig, ax = _figure(ax, (6.5, 0.45 * len(names) + 1.6))
    ax.axvline(0, color=_COLORS[0], lw=1)
    for y, name in enumerate(names):
        d = differences[name]
        color = _COLORS[4] if d.detected else _COLORS[2]
        if d.ci is not None:
            ax.plot(d.ci, [y, y], "-", color=color, lw=2)
        ax.scatter([d.delta], [y], s=45, color=color if d.detected else "white", edgecolors=color, zorder=3, lw=1.5)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel(f"Δ {metric} against {reference} (95% interval)")
    queries = {getattr(d, "queries", None) for d in differences.values()}
    n = f", {queries.pop()} queries" if len(queries) == 1 else ""
    ax.set_title((title or f"Against {reference}") + n + "\nfilled: a detectable difference (Holm); hollow: none",
                 fontsize=9.5)
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def position_heatmaps(matrices: Mapping[str, object], path: str | Path | None = None, max_rank: int = 5,
                      title: str = "Where each method puts each input position"):
    """One panel per method: share of queries on which input position *x* (0 = the first
    stage's top) ends at output rank *y* (``analysis.movement.position_matrix``), top ranks only.
    Reading the passages spreads the mass; echoing the input is the diagonal; a position prior
    is one bright column."""
    import numpy as np

    names = list(matrices)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.6), dpi=110, squeeze=False)
    for ax, name in zip(axes[0], names):
        counts = np.asarray(matrices[name], dtype=float)[:max_rank]
        share = counts / max(counts.sum(axis=1).max(), 1.0)
        image = ax.imshow(share, aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("input position")
        ax.set_yticks(range(len(share)), [str(r + 1) for r in range(len(share))])
    axes[0][0].set_ylabel("output rank")
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="share of queries")
    fig.suptitle(title, fontsize=10, y=1.04)  # above the panel titles, not across them
    return _save(fig, path)


def cost_quality_bars(rows: Sequence[Mapping], quality: str = "nDCG@10", cost: str = "model s/query",
                      baseline: float | None = None, path: str | Path | None = None):
    """Two bar panels side by side: quality per method (first stage dashed) and cost per method (log
    scale when the costs span more than 20×, where a linear axis would hide the cheap methods)."""
    names = [r["method"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2), dpi=110)
    left.barh(names, [r[quality] for r in rows], color=_COLORS[2])
    if baseline is not None:
        left.axvline(baseline, ls="--", color=_COLORS[4], label="first stage")
        left.legend(fontsize=8, loc="lower right")
    left.set_xlabel(quality)
    left.invert_yaxis()
    costs = [max(r[cost], 1e-3) for r in rows]
    right.barh(names, costs, color=_COLORS[3])
    logarithmic = max(costs) > 20 * min(costs)
    if logarithmic:
        right.set_xscale("log")
    right.set_xlabel(cost + (" (log)" if logarithmic else ""))
    for y, value in enumerate(costs):
        right.annotate(f"{value:.3g}", (value, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    right.invert_yaxis()
    right.set_yticks([])
    for ax in (left, right):
        ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)

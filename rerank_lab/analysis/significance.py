"""One way to say whether a difference is a difference, for every table, chart and takeaway.

A difference between two pipelines on the same queries is reported as its mean, its 95%
interval (Student's t over the per-query differences), the raw paired p and the p corrected
(Holm, Scand. J. Statist. 1979) within a named family of comparisons. It is called a
difference only when the test says so: the corrected p is below the level (when there is a
corrected p; otherwise the interval excludes 0, or the raw p is below the level). Otherwise the
words are "no detectable difference on N queries": an interval that includes 0 does not show
that two pipelines are equal, only that these queries cannot tell them apart (its width says how
large a difference they could have missed).

Choices follow the same rule (:func:`choose`): among candidates, the cheapest one whose metric
is not detectably below the best candidate's, the candidates compared with the best by paired
tests Holm-corrected across them. The lab's tuner picks settings the same way, with a fixed
tolerance instead of a test (:mod:`rerank_lab.train.tune`).

Usage::

    phrase(+0.0372, (0.0153, 0.0591), 0.0003, 195, p_holm=0.0009)
    # 'a detectable lift on 195 queries (Δ +0.0372, 95% CI [+0.0153, +0.0591], p 0.0003, Holm p 0.0009)'
    from_row(exp.table()[-1], "ndcg@10").phrase()          # against the experiment's baseline
    from_row(row, "ndcg@10", against="clean").detected     # the clean-query split of a trained reranker
    choose(exp, ["ce@10", "ce@20", "ce@50"], cost="model_median_ms").sentence()
    against_baseline(exp)["hybrid>>ce"].verdict()           # every pipeline against the baseline
    d = from_row(row, against="clean"); d.power_sentence()  # what these queries could have detected

Power (Webber, Moffat & Zobel, CIKM 2008; Sakai, SIGIR 2016): :func:`detectable_effect` is the
smallest true mean difference a two-sided paired t-test at the level finds with the given power,
from the per-query spread of the differences; :func:`queries_needed` is how many queries a given
true difference needs. Both use the noncentral t distribution, not a normal approximation, so they
stay right on the 30-query samples the LLM families are measured on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

LEVEL = 0.05
AGAINST = ("baseline", "input", "clean", "contaminated")


@dataclass(frozen=True)
class Difference:
    """``b − a`` on ``queries`` paired queries: mean ``delta``, 95% interval ``ci``, raw ``p`` and the
    Holm-corrected ``p_holm`` within ``family`` (a sentence naming what the correction covers)."""

    delta: float
    ci: tuple[float, float] | None
    p: float | None
    queries: int
    p_holm: float | None = None
    family: str | None = None
    level: float = LEVEL

    @property
    def detected(self) -> bool:
        """Whether the test calls it a difference: the corrected p (else the interval, else the raw p)."""
        if self.p_holm is not None:
            return self.p_holm < self.level
        if self.ci is not None and not any(math.isnan(x) for x in self.ci):
            return self.ci[0] > 0 or self.ci[1] < 0
        return self.p is not None and self.p < self.level

    @property
    def direction(self) -> str:
        """``"higher"``, ``"lower"`` (detected differences only) or ``"none"``."""
        if not self.detected:
            return "none"
        return "higher" if self.delta > 0 else "lower"

    def numbers(self) -> str:
        """``Δ +0.0372, 95% CI [+0.0153, +0.0591], p 0.0003, Holm p 0.0009``."""
        parts = [f"Δ {self.delta:+.4f}"]
        if self.ci is not None and not any(math.isnan(x) for x in self.ci):
            parts.append(f"95% CI [{self.ci[0]:+.4f}, {self.ci[1]:+.4f}]")
        if self.p is not None:
            parts.append(f"p {format_p(self.p)}")
        if self.p_holm is not None:
            parts.append(f"Holm p {format_p(self.p_holm)}")
        return ", ".join(parts)

    def verdict(self, up: str = "lift", down: str = "drop") -> str:
        """``"a detectable lift on 195 queries"``, ``"a detectable drop on …"`` or ``"no detectable
        difference on 105 queries"``."""
        if not self.detected:
            return f"no detectable difference on {self.queries} queries"
        return f"a detectable {up if self.delta > 0 else down} on {self.queries} queries"

    def phrase(self, up: str = "lift", down: str = "drop") -> str:
        """The verdict with its numbers in brackets."""
        return f"{self.verdict(up, down)} ({self.numbers()})"

    @property
    def spread(self) -> float | None:
        """The standard deviation of the per-query differences, recovered from the 95% interval."""
        if self.ci is None or self.queries < 2 or any(math.isnan(x) for x in self.ci):
            return None
        from scipy import stats

        return (self.ci[1] - self.ci[0]) / 2 * math.sqrt(self.queries) / float(stats.t.ppf(0.975, self.queries - 1))

    def power_sentence(self, power: float = 0.8) -> str:
        """What these queries could tell: ``"on 104 queries a paired t-test at 0.05 finds a true
        difference of ±0.0297 with 80% power; a true +0.0182 would need about 279 queries"``."""
        sd = self.spread
        if sd is None:
            return f"{self.queries} queries give no interval, so no power can be stated."
        smallest = detectable_effect(sd, self.queries, power, self.level)
        text = (f"on {self.queries} queries a paired t-test at {self.level:g} finds a true difference of "
                f"±{smallest:.4f} with {power:.0%} power")
        if not self.detected and abs(self.delta) > 0:
            text += (f"; a true {self.delta:+.4f} (the observed mean) would need about "
                     f"{queries_needed(abs(self.delta), sd, power, self.level)} queries")
        return text + "."


def _power(effect: float, sd: float, queries: int, level: float) -> float:
    from scipy import stats

    df = queries - 1
    critical = float(stats.t.ppf(1 - level / 2, df))
    shift = effect * math.sqrt(queries) / sd
    # the lower tail as the upper tail of the mirrored shift: scipy's nct.cdf gives NaN far out in the tail
    return float(stats.nct.sf(critical, df, shift) + stats.nct.sf(critical, df, -shift))


def detectable_effect(sd: float, queries: int, power: float = 0.8, level: float = LEVEL) -> float:
    """The smallest true mean difference a two-sided paired t-test at ``level`` on ``queries``
    queries finds with probability ``power``, when per-query differences spread with standard
    deviation ``sd`` (Webber, Moffat & Zobel, CIKM 2008).

    Usage: ``detectable_effect(0.107, 104)  # ≈ 0.0297``"""
    from scipy.optimize import brentq

    if queries < 2 or not sd > 0:
        raise ValueError(f"need at least 2 queries and a positive spread, got {queries} queries, sd {sd}")
    if not 0 < power < 1:
        raise ValueError(f"power must be between 0 and 1, got {power}")
    high = sd
    while _power(high, sd, queries, level) < power:
        high *= 2
    return float(brentq(lambda effect: _power(effect, sd, queries, level) - power, 0.0, high, xtol=1e-7))


def queries_needed(effect: float, sd: float, power: float = 0.8, level: float = LEVEL) -> int:
    """How many paired queries a two-sided t-test at ``level`` needs to find a true mean difference
    ``effect`` with probability ``power`` (Sakai, SIGIR 2016, on topic-set size design).

    Usage: ``queries_needed(0.0182, 0.107)  # ≈ 274``"""
    if not effect > 0 or not sd > 0:
        raise ValueError(f"effect and spread must be positive, got effect {effect}, sd {sd}")
    from scipy import stats

    # the normal approximation is a lower bound; walk up from it to the exact noncentral-t answer
    queries = max(2, int((stats.norm.ppf(1 - level / 2) + stats.norm.ppf(power)) ** 2 * (sd / effect) ** 2))
    while _power(effect, sd, queries, level) < power:
        queries += 1
    return queries


def format_p(p: float) -> str:
    """Two significant digits (``0.0009``, ``0.91``); below 0.0001 as ``<0.0001``."""
    return "<0.0001" if p < 0.0001 else f"{p:.2g}"


def phrase(delta: float, ci: Sequence[float] | None, p: float | None, queries: int, p_holm: float | None = None,
           level: float = LEVEL) -> str:
    """The words for one difference: ``"a detectable lift on N queries (…)"``, ``"a detectable drop
    on N queries (…)"`` or ``"no detectable difference on N queries (…)"``."""
    return Difference(delta, tuple(ci) if ci is not None else None, p, queries, p_holm, level=level).phrase()


def from_row(row: Mapping, metric: str = "ndcg@10", against: str = "baseline", family: str | None = None,
             level: float = LEVEL) -> Difference | None:
    """The :class:`Difference` an :meth:`Experiment.table() <rerank_lab.analysis.experiment.Experiment.table>`
    row reports ``against`` its baseline, its own input (``"input"``), or its input on the
    ``"clean"`` / ``"contaminated"`` queries of a trained reranker; None where the row has none."""
    if against not in AGAINST:
        raise ValueError(f"against must be one of {', '.join(AGAINST)}, got {against!r}")
    if against == "baseline":
        delta, ci, p, holm_p, n = (row.get(f"delta_{metric}"), row.get("ci95"), row.get("p_raw"), row.get("p_holm"),
                                   row.get("queries"))
    elif against == "input":
        delta, ci, p, holm_p, n = (row.get(f"vs_input_{metric}"), row.get("vs_input_ci95"), None,
                                   row.get("vs_input_p_holm"), row.get("queries"))
    else:
        delta, ci, p, holm_p, n = (row.get(f"{against}_delta_vs_input"), row.get(f"{against}_ci95"),
                                   row.get(f"{against}_p_raw"), row.get(f"{against}_p"), row.get(f"{against}_queries"))
        if holm_p == p:  # a part with a single pipeline: its p is not corrected
            holm_p = None
    if delta is None or not n:
        return None
    return Difference(float(delta), tuple(ci) if ci else None, p, int(n), holm_p, family, level)


@dataclass(frozen=True)
class Choice:
    """What :func:`choose` picked and why: the ``best`` candidate by the metric, each other candidate's
    :class:`Difference` against it, and the ``pick``: the cheapest candidate not detectably below it."""

    pick: str
    best: str
    metric: str
    cost: str
    values: Mapping[str, float]
    costs: Mapping[str, float]
    against_best: Mapping[str, Difference] = field(default_factory=dict)
    family: str = ""

    def sentence(self, label: str = "") -> str:
        """One line saying what was picked and what the test says about the rest."""
        what = f"{label}: " if label else ""
        if self.pick == self.best:
            cheaper = [n for n in self.against_best if self.costs[n] < self.costs[self.best]]
            if not cheaper:
                return (f"{what}**{self.pick}** ({self.metric} {self.values[self.pick]:.4f}): the best and the cheapest "
                        f"of the candidates.")
            return (f"{what}**{self.pick}** ({self.metric} {self.values[self.pick]:.4f}): every cheaper candidate scores "
                    f"detectably lower (" + "; ".join(f"{n} {self.against_best[n].numbers()}" for n in cheaper) + ").")
        d = self.against_best[self.pick]
        return (f"{what}**{self.pick}**, the cheapest candidate not detectably below the best-scoring {self.best} "
                f"({self.metric} {self.values[self.pick]:.4f} against {self.values[self.best]:.4f}: "
                f"{d.verdict()}, {d.numbers()}).")


def choose(experiment, names: Sequence[str], cost: str = "model_median_ms", metric: str | None = None,
           level: float = LEVEL, family_size: int | None = None) -> Choice:
    """Among the pipelines ``names`` of a run :class:`~rerank_lab.analysis.experiment.Experiment`,
    the cheapest (by the table column ``cost``) whose ``metric`` is not detectably below the best
    one's: each candidate is compared with the best by the experiment's paired test, the p-values
    Holm-corrected across those comparisons (the family :attr:`Choice.family` names).
    ``family_size`` corrects over more comparisons than the candidates make, the rest counted with
    p = 1: picks over nested candidate sets (latency budgets) then share one correction, so a larger
    set never calls a difference noise that a smaller one called detectable."""
    from .evaluate import holm, paired_test

    if not names:
        raise ValueError("choose needs at least one candidate pipeline")
    metric = metric or experiment.metrics[0]
    rows = {r["name"]: r for r in experiment.table()}
    missing = [n for n in names if n not in rows]
    if missing:
        raise KeyError(f"not pipelines of the experiment: {', '.join(missing)}")
    values = {n: float(rows[n][metric]) for n in names}
    costs = {n: float(rows[n][cost]) for n in names}
    best = max(names, key=lambda n: (values[n], -costs[n]))
    others = [n for n in names if n != best]
    results = experiment.results
    tests = [paired_test(results[best], results[n], metric, experiment.test) for n in others]
    size = max(len(others), family_size or 0)
    adjusted = holm([t.p_value for t in tests] + [1.0] * (size - len(others)))[:len(others)] if tests else []
    family = (f"each candidate against {best} (the best {metric}): paired {experiment.test}, Holm over the "
              f"{size} comparisons" + (f" ({size - len(others)} not among the candidates, counted with p = 1)"
                                       if size > len(others) else ""))
    against = {n: Difference(t.delta, (t.ci_low, t.ci_high), t.p_value, t.queries, p, family, level)
               for n, t, p in zip(others, tests, adjusted)}
    fine = [best] + [n for n in others if not (against[n].detected and against[n].delta < 0)]
    pick = min(fine, key=lambda n: (costs[n], -values[n]))
    return Choice(pick, best, metric, cost, values, costs, against, family)


def against_baseline(experiment, metric: str | None = None, level: float = LEVEL) -> dict[str, Difference]:
    """``{pipeline: Difference}`` against a run experiment's baseline, each carrying the sentence that
    names its Holm family (the first of :meth:`~rerank_lab.analysis.experiment.Experiment.families`)."""
    metric = metric or experiment.metrics[0]
    family = next(iter(experiment.families()), None)
    out = {}
    for row in experiment.table():
        d = from_row(row, metric, "baseline", family, level)
        if d is not None:
            out[row["name"]] = d
    return out


__all__ = ["AGAINST", "Choice", "Difference", "LEVEL", "against_baseline", "choose", "detectable_effect", "format_p",
           "from_row", "phrase", "queries_needed"]

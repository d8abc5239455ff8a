"""From pairwise votes to one score per document: Bradley-Terry and Thurstone maximum likelihood.

A vote says with probability ``p`` that document i beats j (a judge's probability, or 0/1).
Bradley-Terry (Bradley & Terry, 1952) models P(i beats j) = sigmoid(s_i - s_j); Thurstone case V
(Thurstone, 1927; the model zELO fits, arXiv:2509.12541) P(i beats j) = Phi((s_i - s_j) / sqrt(2)).
Both are fitted per query by maximum likelihood with a weak Gaussian prior on the scores (mean 0,
``prior_sd``), which keeps sparse graphs (a document that won all its few votes) finite.

Usage::

    fit = fit_scores(n=20, votes=[(0, 1, 0.8), (1, 2, 0.3)], model="thurstone")
    fit.scores, fit.agreement, fit.intransitive_triples, fit.log_likelihood
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

MODELS = ("bradley-terry", "thurstone")
Vote = tuple[int, int, float]   # (i, j, probability that i beats j)


@dataclass(frozen=True)
class Fit:
    model: str
    scores: np.ndarray            # one per document, mean 0
    log_likelihood: float
    agreement: float              # share of votes whose side (p > 0.5) the fitted scores agree with
    intransitive_triples: int     # judged triangles whose majority preferences form a cycle
    votes: int = field(default=0)


def _prob_and_grad(diff: np.ndarray, model: str) -> tuple[np.ndarray, np.ndarray]:
    """P(i beats j) and dP/d(diff)."""
    if model == "bradley-terry":
        p = 1.0 / (1.0 + np.exp(-diff))
        return p, p * (1.0 - p)
    from scipy.stats import norm

    z = diff / math.sqrt(2.0)
    return norm.cdf(z), norm.pdf(z) / math.sqrt(2.0)


def fit_scores(n: int, votes: Sequence[Vote], model: str = "thurstone", prior_sd: float = 3.0) -> Fit:
    """Maximum-likelihood scores for ``n`` documents from ``votes`` under ``model``."""
    from scipy.optimize import minimize

    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}: use one of {', '.join(MODELS)}")
    if n == 0:
        return Fit(model, np.zeros(0), 0.0, 1.0, 0, 0)
    i = np.array([v[0] for v in votes], dtype=int)
    j = np.array([v[1] for v in votes], dtype=int)
    p = np.clip(np.array([v[2] for v in votes], dtype=float), 0.0, 1.0)
    eps = 1e-12

    def objective(s):
        diff = s[i] - s[j] if len(votes) else np.zeros(0)
        prob, dprob = _prob_and_grad(diff, model)
        prob = np.clip(prob, eps, 1 - eps)
        nll = -np.sum(p * np.log(prob) + (1 - p) * np.log(1 - prob)) + 0.5 * np.sum(s ** 2) / prior_sd ** 2
        dnll_ddiff = -(p / prob - (1 - p) / (1 - prob)) * dprob
        grad = s / prior_sd ** 2
        np.add.at(grad, i, dnll_ddiff)
        np.add.at(grad, j, -dnll_ddiff)
        return nll, grad

    result = minimize(objective, np.zeros(n), jac=True, method="L-BFGS-B")
    scores = result.x - result.x.mean()
    agree = float(np.mean((scores[i] > scores[j]) == (p > 0.5))) if len(votes) else 1.0
    loglik = -float(objective(scores)[0]) - 0.0
    return Fit(model, scores, loglik, agree, intransitive_triples(votes), len(votes))


def intransitive_triples(votes: Sequence[Vote]) -> int:
    """Triangles of judged pairs whose majority preferences cycle (a beats b beats c beats a):
    how inconsistent a judge is, independent of any fit."""
    prefer: dict[tuple[int, int], float] = {}
    for a, b, p in votes:
        prefer[(a, b)] = prefer.get((a, b), 0.0) + (p - 0.5)
        prefer[(b, a)] = prefer.get((b, a), 0.0) - (p - 0.5)
    neighbours: dict[int, set[int]] = {}
    for a, b in prefer:
        neighbours.setdefault(a, set()).add(b)
    count = 0
    for a in neighbours:
        for b in neighbours[a]:
            if b <= a or prefer[(a, b)] == 0:
                continue
            for c in neighbours[a] & neighbours.get(b, set()):
                if c <= b:
                    continue
                wins = [prefer[(a, b)] > 0, prefer[(b, c)] > 0, prefer[(c, a)] > 0]
                if all(wins) or not any(wins):
                    count += 1
    return count

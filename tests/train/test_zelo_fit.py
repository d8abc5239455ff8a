"""zELO's sampling plans and fits, on synthetic votes with a known truth."""
import math

import numpy as np
import pytest
from scipy.stats import norm, spearmanr

from rerank_lab.train.zelo.fit import fit_scores, intransitive_triples
from rerank_lab.train.zelo.sampling import cycle_plan, is_connected, random_plan


@pytest.mark.parametrize("n, k", [(10, 2), (30, 4), (30, 12), (7, 6)])
def test_cycle_plans_are_sparse_connected_and_nearly_regular(n, k):
    pairs = cycle_plan(n, k, seed=1)
    assert len(pairs) == min(n * (n - 1) // 2, (n * k + 1) // 2) and len(set(pairs)) == len(pairs)
    assert all(a < b for a, b in pairs) and is_connected(n, pairs)
    degree = np.bincount(np.array(pairs).ravel(), minlength=n)
    assert degree.min() >= 2 and degree.max() <= k + 2
    assert cycle_plan(n, k, seed=1) == pairs  # a seed gives one plan
    if len(pairs) < n * (n - 1) // 2:  # another seed another plan, unless the budget covers every pair
        assert cycle_plan(n, k, seed=2) != pairs
    else:
        assert set(cycle_plan(n, k, seed=2)) == set(pairs)


def test_random_plan_respects_the_budget():
    assert len(random_plan(20, 30, seed=0)) == 30
    assert len(random_plan(5, 100)) == 10  # a budget above all pairs gives all pairs


@pytest.mark.parametrize("model", ["bradley-terry", "thurstone"])
def test_fits_recover_a_known_ranking_from_noisy_sparse_votes(model):
    rng = np.random.default_rng(0)
    latent = rng.normal(0, 2, 25)
    votes = []
    for a, b in cycle_plan(25, 10, seed=0):
        for _ in range(2):
            votes.append((a, b, float(rng.random() < norm.cdf((latent[a] - latent[b]) / math.sqrt(2)))))
    fit = fit_scores(25, votes, model)
    assert spearmanr(latent, fit.scores).statistic > 0.9
    assert abs(fit.scores.mean()) < 1e-9 and fit.agreement > 0.7 and np.isfinite(fit.log_likelihood)


def test_the_prior_keeps_a_document_that_won_everything_finite():
    votes = [(0, i, 1.0) for i in range(1, 6)]  # document 0 wins all its votes
    fit = fit_scores(6, votes, "thurstone")
    assert np.all(np.isfinite(fit.scores)) and fit.scores[0] == fit.scores.max() < 20
    weaker = fit_scores(6, votes, "thurstone", prior_sd=100.0)
    assert weaker.scores[0] > fit.scores[0]  # a weaker prior lets the winner drift further


def test_intransitive_triples_are_counted():
    cycle = [(0, 1, 0.9), (1, 2, 0.9), (2, 0, 0.9)]
    consistent = [(0, 1, 0.9), (1, 2, 0.9), (0, 2, 0.9)]
    assert intransitive_triples(cycle) == 1 and intransitive_triples(consistent) == 0
    with pytest.raises(ValueError, match="unknown model"):
        fit_scores(3, cycle, "elo")

"""zELO: pairwise judgments -> Thurstone scores -> a pointwise student (arXiv:2509.12541).

- :mod:`.sampling`: which pairs to judge under a budget (random, cycle-based k-regular plans)
- :mod:`.fit`: Bradley-Terry and Thurstone maximum likelihood per query, with diagnostics
- :mod:`.judges`: sources of pairwise preferences (an LLM, a reranker, an ensemble), cached
- :mod:`.student`: a cross-encoder trained on the fitted scores
- :mod:`.adapt`: label-free adaptation to a corpus (pseudo-queries, judge, fit, student)
"""

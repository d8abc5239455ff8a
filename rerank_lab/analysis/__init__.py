"""Analysis: trec_eval-exact evaluation and significance, declarative experiments, plots."""

"""Training recipes: fine-tune rerankers on BEIR *train* splits (never test).

Usage::

    from rerank_lab.train.cross_encoder import TrainConfig, train_cross_encoder
    train_cross_encoder(TrainConfig(output="models/my-ce"))
"""

"""Shared components every family uses: stores, wrappers, batching, model loading.

- :mod:`.stores`: the key-value (sqlite) and embedding (npy shards) caches, damage-tolerant
- :mod:`.cached`, :mod:`.passages`, :mod:`.refine`: wrappers that compose with any scorer
- :mod:`.batching`: length-bucketed batches
- :mod:`.models`: model ids -> folders, identities for cache keys, device policy, shared loading
- :mod:`.encoder`: the shared token encoder (dense and MaxSim)
- :mod:`.openvino`, :mod:`.colbert_ai`: runtime backends (OpenVINO graphs and int8; colbert-ai checkpoints and patches)
"""
from .cached import Cached
from .passages import AGGREGATIONS, Passages, WordWindows
from .refine import Refine, close_calls
from .stores import EmbeddingStore, KeyValueStore, cache_dir, cache_root

__all__ = ["AGGREGATIONS", "Cached", "EmbeddingStore", "KeyValueStore", "Passages", "Refine", "WordWindows",
           "cache_dir", "cache_root", "close_calls"]

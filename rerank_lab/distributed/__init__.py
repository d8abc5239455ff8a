"""Scale-out: the Ray executor (:mod:`.ray_executor`, the ``ray`` extra)."""

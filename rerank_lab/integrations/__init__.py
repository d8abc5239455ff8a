"""Bridges to other frameworks: PyTerrier both ways (:mod:`.pyterrier`)."""

"""Optimisation in pixel space: the Gatys-style baseline the feed-forward nets are measured against, and layer
reconstructions (what each loss-network layer keeps)."""

"""perceptual: image transformation networks trained with perceptual losses (Lightning + Hydra)."""

__version__ = "0.1.0"

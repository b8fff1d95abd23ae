"""kdmem: a reproducibility pipeline for memorization in knowledge distillation (arXiv 2601.15394)."""

__version__ = "0.1.0"

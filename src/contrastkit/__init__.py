"""contrastkit: contrastive and self-supervised representation learning.

The public API is listed in ``__all__``; everything else is an implementation detail.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

"""Measuring a representation h: kNN, linear probe, separation gap, alignment/uniformity,
effective rank (``metrics``), CLIP zero-shot classification (``zeroshot``) and ViT attention maps
against true masks (``attention``).
"""

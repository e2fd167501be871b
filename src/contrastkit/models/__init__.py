"""Networks: backbones f (MLP, small CNN, ResNet, ViT), heads g, the CLIP text tower, EMA copies.

Every module here is a plain ``nn.Module`` builder; nothing knows about losses or training.
"""

"""CLIP zero-shot on colour-shape pairs it never saw: a tiny CLIP trained a few hundred steps.

    python benchmarks/zeroshot_unseen.py             # 300 steps, batch 128, 16x16 shapes
    python benchmarks/zeroshot_unseen.py --steps 600

The train split of ``shapes`` holds out some (colour, shape) pairs in images and captions
(``DEFAULT_HOLDOUT``); the test split has them. The script prints zero-shot accuracy on the
held-out pairs next to chance, for colour names (6-way) and for "colour shape" captions
(30-way), and image->text recall@5, with the claims the CLIP page makes: colour at least chance
+ 0.4, pairs at least 2.5 x chance, recall@5 at least 0.5.
"""

from __future__ import annotations

import argparse
import time

import torch

from contrastkit.evaluation.zeroshot import evaluate_zero_shot


def train_tiny_clip(steps: int = 300, batch_size: int = 128):
    """Train a tiny CLIP on 16x16 shapes with the trainer's pieces; return it and the test split.

    The train split holds out DEFAULT_HOLDOUT's (colour, shape) pairs in images and captions.
    """
    from contrastkit.data.captions import CaptionedImages
    from contrastkit.data.shapes import build_shapes
    from contrastkit.methods import CLIP
    from contrastkit.models.backbones import build_backbone
    from contrastkit.training.batches import epoch_batches
    from contrastkit.training.optim import build_optimizer, build_scheduler
    from contrastkit.transforms import build_view_fn

    train_ds = build_shapes(train=True, seed=0, size=16, n=2000)
    torch.manual_seed(0)
    model = CLIP(
        build_backbone("cnn", image_size=16, width=16),
        **CLIP.options_from_data(train_ds),
        embed_dim=32,
        text_width=32,
        text_depth=1,
        text_heads=2,
    )
    data = CaptionedImages(train_ds, model.tokenizer)
    view_fn = build_view_fn(model.view_recipe, train_ds)
    optimizer = build_optimizer(model, "adamw", 3e-3, 0.1)
    scheduler = build_scheduler(optimizer, steps, steps // 10)
    step, epoch = 0, 0
    while step < steps:
        for views in epoch_batches(data, view_fn, seed=0, epoch=epoch, batch_size=batch_size):
            out = model.training_step(views)
            optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            optimizer.step()
            scheduler.step()
            model.after_step(step, steps, out)
            step += 1
            if step == steps:
                break
        epoch += 1
    return model.eval(), build_shapes(train=False, seed=0, size=16, n=1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    start = time.perf_counter()
    model, test_ds = train_tiny_clip(args.steps, args.batch_size)
    seconds = time.perf_counter() - start
    colours = evaluate_zero_shot(model, test_ds, test_ds.color_names, ["a photo of a {} shape"])
    combos = [f"{c} {s}" for c in test_ds.color_names for s in test_ds.class_names]
    pairs = evaluate_zero_shot(model, test_ds, combos, ["a photo of a {}"])
    recall = pairs.recall["image_to_text@5"]
    print(f"trained {args.steps} steps of batch {args.batch_size} in {seconds:.1f} s")
    print(f"never-seen pairs in the test split: {int(test_ds.unseen.sum())}")
    rows = [
        ("colour (6-way)", colours.unseen_accuracy, colours.chance, colours.chance + 0.4),
        ("colour shape (30-way)", pairs.unseen_accuracy, pairs.chance, 2.5 * pairs.chance),
        ("image->text recall@5", recall, 5 * pairs.chance, 0.5),
    ]
    print("| zero-shot on never-seen pairs | measured | chance | claim | holds |")
    print("|---|---|---|---|---|")
    for name, value, chance, claim in rows:
        print(f"| {name} | {value:.3f} | {chance:.3f} | >= {claim:.3f} | {value >= claim} |")


if __name__ == "__main__":
    main()

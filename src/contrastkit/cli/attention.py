"""``contrastkit attention``: draw the [CLS] self-attention of a trained ViT over an image."""

from __future__ import annotations

import argparse
from math import isqrt
from pathlib import Path

# Patches of one image: the last layer's attention is heads x N x N floats (4 heads at 4,096
# patches: 268 MB); a 4096-px --size on 4-px patches would ask for terabytes.
MAX_PATCHES = 4096


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``attention`` subcommand."""
    parser = subparsers.add_parser(
        "attention",
        help="draw a trained ViT's [CLS] self-attention over an image",
        description=(
            "Load a run trained with --backbone vit, pass one image through it and write a PNG "
            "grid: the image, the last layer's [CLS]-to-patch attention of each head upsampled "
            "to the image, their mean, and the smallest set of patches holding --keep-mass of "
            "the mean's attention (DINO's 60% mask). With --sample the dataset's true object "
            "mask is drawn too when it has one. A DINO run shows its EMA teacher, as DINO's own "
            "visualisation does. DINO-trained heads tend to light up the object, a randomly "
            "initialised ViT's do not (benchmarks/attention_masks.py measures how well)."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by train")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--image",
        metavar="PATH",
        help="any image file; its shorter side is resized to --size, the aspect ratio is kept",
    )
    source.add_argument(
        "--sample",
        metavar="DATA:INDEX",
        help="a dataset sample instead of a file, e.g. shapes:12 or folder:~/photos:3 "
        "(from the held-out split unless --train-split)",
    )
    parser.add_argument(
        "--train-split",
        action="store_true",
        help="with --sample, index the training split instead of the held-out one",
    )
    parser.add_argument(
        "--out",
        metavar="PNG",
        help="where to write the picture (default: RUN_DIR/attention.png)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="shorter side in pixels for --image (default: the run's training image size; "
        "larger sizes give finer maps, the position embeddings are interpolated)",
    )
    parser.add_argument(
        "--keep-mass",
        type=float,
        default=0.6,
        help="fraction of the attention mass kept by the drawn mask (default: %(default)s, "
        "as in the DINO paper)",
    )
    parser.add_argument(
        "--layer",
        type=int,
        default=-1,
        help="which block's attention, counted from 0 (negative: from the end; default: -1, the "
        "last, as DINO shows it; benchmarks/attention_masks.py scores every layer)",
    )
    parser.set_defaults(func=run)


def _parse_sample(text: str) -> tuple[str, int]:
    spec, sep, index = text.rpartition(":")
    if not sep or not spec or not index.lstrip("-").isdigit():
        raise ValueError(f"--sample must be DATA:INDEX such as shapes:12, got {text!r}")
    return spec, int(index)


def run(args: argparse.Namespace) -> int:
    """Write the attention grid of one image; return the exit code."""
    import torch

    from contrastkit.data import build_dataset, image_size_for
    from contrastkit.evaluation.attention import (
        cls_attention_maps,
        has_attention,
        load_image,
        save_attention_figure,
    )
    from contrastkit.training.runs import load_run

    if not 0.0 < args.keep_mass <= 1.0:
        raise ValueError(f"--keep-mass must be in (0, 1], got {args.keep_mass}")
    if args.out and Path(args.out).suffix.lower() != ".png":
        raise ValueError(f"--out {args.out}: the figure is a PNG; give a file name ending in .png")
    if args.out and not Path(args.out).expanduser().parent.is_dir():
        raise ValueError(f"--out {args.out}: folder {Path(args.out).parent} does not exist")
    if args.size is not None and args.size < 1:
        raise ValueError(f"--size must be a positive number of pixels, got {args.size}")
    sample = _parse_sample(args.sample) if args.sample else None
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"RUN_DIR {str(run_dir)!r} is not a folder written by contrastkit train")
    method, config = load_run(run_dir)
    # DINO's visualisation reads the EMA teacher; methods without one show their backbone
    teacher = method.teacher_backbone
    backbone = teacher if teacher is not None else method.backbone
    if not has_attention(backbone):
        raise ValueError(
            f"run {str(run_dir)!r} has backbone {getattr(config, 'backbone', '?')!r}, which has "
            "no self-attention; train with --backbone vit to draw attention maps"
        )
    depth = len(backbone.blocks)
    if not -depth <= args.layer < depth:
        raise ValueError(
            f"--layer must be in [-{depth}, {depth - 1}] for this ViT, got {args.layer}"
        )
    patch = backbone.patch_size
    channels = backbone.in_channels
    true_mask = None
    if sample is None:
        size = args.size or backbone.grid * patch
        if (size // patch) ** 2 > MAX_PATCHES:
            raise ValueError(
                f"--size {size} gives {(size // patch) ** 2} patches of {patch} px; the attention "
                f"of at most {MAX_PATCHES} fits in memory (--size <= {isqrt(MAX_PATCHES) * patch})"
            )
        image = load_image(args.image, size, channels=channels, multiple=patch)
        if (image.shape[1] // patch) * (image.shape[2] // patch) > MAX_PATCHES:
            raise ValueError(
                f"--size {size}: {args.image} is {image.shape[2]}x{image.shape[1]} px at that "
                f"size, over {MAX_PATCHES} patches of {patch} px; pass a smaller --size"
            )
        label = Path(args.image).name
    else:
        spec, index = sample
        size = image_size_for(spec, getattr(config, "image_size", None))
        seed = getattr(config, "seed", 0)
        dataset = build_dataset(spec, train=args.train_split, seed=seed, image_size=size)
        if not 0 <= index < len(dataset):
            raise ValueError(f"--sample index must be in [0, {len(dataset)}), got {index}")
        if getattr(dataset, "kind", None) != "images":
            raise ValueError(f"--sample needs an image dataset, {spec!r} holds {dataset.kind}")
        image, _ = dataset[index]
        if image.shape[0] != channels:
            raise ValueError(
                f"--sample {args.sample} has {image.shape[0]} channel(s), the run's ViT expects "
                f"{channels}"
            )
        masks = getattr(dataset, "masks", None)
        if masks is not None:
            true_mask = masks[index][None]
        label = args.sample
        H, W = (image.shape[1] // patch) * patch, (image.shape[2] // patch) * patch
        image = image[:, :H, :W]
        true_mask = None if true_mask is None else true_mask[:, :H, :W]
    images = image[None].float()  # (1, C, H, W)
    with torch.no_grad():
        maps = cls_attention_maps(backbone, images, args.layer)  # (1, K, h, w)
    out = Path(args.out) if args.out else run_dir / "attention.png"
    save_attention_figure(
        out, images, maps, true_masks=true_mask, keep_mass=args.keep_mass, row_titles=[label]
    )
    layer = args.layer % depth
    print(
        f"wrote {out} ({maps.shape[1]} heads of layer {layer} of {depth}, "
        f"{maps.shape[2]}x{maps.shape[3]} patches)"
    )
    return 0

"""Does DINO's [CLS] attention find the object? Jaccard with the true masks of held-out shapes.

DINO (Caron et al. 2021, section 4.2.1, https://arxiv.org/abs/2104.14294) thresholds the last
layer's [CLS]-to-patch attention so that it keeps 60% of its mass and compares the resulting mask
with the true object mask (Jaccard 45.9 for DINO ViT-S/16 against 27.3 for a supervised ViT on
PASCAL VOC 2012). This script does the same on held-out ``shapes`` scenes, whose generator knows
every object's pixels, for the same small ViT:

- trained with DINO by the built-in recipe ``dino-vit-shapes`` (``--config`` for another TOML
  recipe; the teacher, as DINO's visualize_attention.py uses it; the student is reported too),
- at its random initialisation (the same seeded weights the DINO run started from),
- trained with labels: cross-entropy on the shape class through a linear layer on the [CLS]
  feature, same optimizer, learning-rate schedule, batch size and number of steps, on DINO's two
  global crops of every image (the same augmentations, without the local crops); for the first
  seed only unless ``--supervised-seeds`` says more (it is the yardstick, not the question),
- masks from no network: a centred Gaussian over the patch grid (objects are never cut by the
  border, so the centre is a good guess), uniform random patch scores, and a saliency map that
  looks at pixel contrast (frequency-tuned saliency, Achanta et al. 2009).

Each encoder's kNN accuracy on the shape class (held-out scenes against the training split) is
printed next to it, to show what its representation has learned.

Headline number: the mean over held-out scenes of the Jaccard index between the true object mask
and the 60%-mass mask of the head-averaged attention map (one map per image, no head chosen by
looking at the answers). "Best head" picks, per model, the single head with the highest mean
Jaccard on these same scenes: an upper bound with the choice made on the test set. The same
number is given for every layer's [CLS] attention and for attention rollout, and for the layer
whose attention best matches the masks of 500 *training* scenes (one choice among the blocks per
encoder, made without the held-out scenes).

Diagnosis (first seed): the teacher's Jaccard, of the mean map and of each head, at a few steps
of the DINO run (``--curve-points``; figure ``docs/attention_training.png``), and how much of the
object the recipe's global and local crops hold.

  python benchmarks/attention_masks.py --seeds 0 1      # the documented run, mean ± std
  python benchmarks/attention_masks.py --dino-run runs/dino-vit-shapes --no-supervised

The numbers of every encoder and seed, the curve and the crop coverage are also written as JSON
(``--record``, default ``benchmarks/results/attention_masks.json``, atomically).

Letters used in shapes: N scenes, K heads, h/w patch grid, S image side.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import Tensor, nn

from contrastkit.checkpoint import atomic_write
from contrastkit.data import build_dataset
from contrastkit.evaluation import metrics as ev
from contrastkit.evaluation.attention import (
    attention_mask,
    cls_attention_maps,
    jaccard,
    save_attention_figure,
    upsample_maps,
)
from contrastkit.training import trainer
from contrastkit.training.batches import step_batches
from contrastkit.training.config import TrainConfig
from contrastkit.training.files import load_toml
from contrastkit.training.malloc import keep_freed_memory
from contrastkit.training.presets import load_recipe
from contrastkit.training.runs import SUMMARY_FILE, build_method, load_run
from contrastkit.training.state import RunLength, TrainingState
from contrastkit.training.trainer import resolve_device, train, view_fn_of
from contrastkit.transforms.full_resolution import crop_box
from contrastkit.transforms.recipes import MultiCrop

ROOT = Path(__file__).resolve().parents[1]
KEEP_MASS = 0.6
RECIPE = "dino-vit-shapes"  # the built-in recipe (contrastkit/training/recipes/)


class Supervised(nn.Module):
    """The same backbone with a linear classifier on its [CLS] feature (the labelled baseline)."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.classifier = nn.Linear(backbone.feature_dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.backbone(x))

    def parameter_groups(self) -> list[dict]:
        return [{"params": list(self.parameters())}]


def train_supervised(config: TrainConfig, backbone: nn.Module) -> tuple[Supervised, float, int]:
    """Train ``backbone`` with labels on the DINO run's global crops; same optimiser and steps.

    The trainer's own pieces: its batches (``step_batches``), its optimizer, learning-rate
    schedule and AMP (``TrainingState``), with cross-entropy in place of the method's loss.

    Returns:
        (the trained classifier in eval mode, seconds, steps).
    """
    dataset = build_dataset(config.data, train=True, seed=config.seed)
    options = {**config.view_options, "n_local": 0}  # DINO's two global crops, same recipe
    view_fn = view_fn_of(dataclasses.replace(config, view_options=options), "multicrop", dataset)
    device = resolve_device(config.device)
    model = Supervised(backbone, int(dataset.labels.max()) + 1).to(device).train()
    length = RunLength.of(config, len(dataset))
    state = TrainingState(model, config, length, device)
    batches = step_batches(
        dataset,
        view_fn,
        seed=config.seed,
        start_step=0,
        total_steps=length.total,
        batch_size=config.batch_size,
        num_workers=config.num_workers,
        device=device,
    )
    start = time.perf_counter()
    for batch in batches:
        y = dataset.labels[batch.indices].repeat(len(batch.views)).to(device)  # (2B,)
        state.optimizer.zero_grad(set_to_none=True)
        with state.autocast():
            loss = F.cross_entropy(model(torch.cat(batch.views)), y)  # logits (2B, classes)
        state.backward(loss)
        state.optimizer_step(config.clip_grad)
        state.step += 1
    seconds = time.perf_counter() - start
    return model.cpu().eval(), seconds, length.total


@torch.no_grad()
def accuracy(model: nn.Module, images: Tensor, labels: Tensor) -> float:
    """Return the classification accuracy of ``model`` on images (N, C, S, S), labels (N,)."""
    logits = torch.cat([model(x) for x in images.split(256)])
    return float((logits.argmax(1) == labels).float().mean())


def center_prior(n: int, heads: int, grid: int) -> Tensor:
    """A centred Gaussian (sigma = grid / 4) over the patch grid for every scene: (N, K, h, w)."""
    coords = torch.arange(grid, dtype=torch.float32) - (grid - 1) / 2
    bump = torch.exp(-(coords[:, None] ** 2 + coords[None, :] ** 2) / (2 * (grid / 4) ** 2))
    return (bump / bump.sum()).expand(n, heads, grid, grid)


def contrast_saliency(images: Tensor, patch: int, heads: int) -> Tensor:
    """Frequency-tuned saliency (Achanta et al. 2009), averaged over each patch: (N, K, h, w).

    Each pixel's distance from its image's mean colour after a 5x5 Gaussian blur (sigma 1), in
    RGB rather than the paper's Lab: a mask that looks at pixel contrast and knows no shape.

    Args:
        images: (N, C, S, S) in [0, 1]; patch: the ViT's patch side; heads: K copies.
    """
    blurred = TF.gaussian_blur(images, kernel_size=[5, 5], sigma=[1.0, 1.0])
    distance = (blurred - images.mean(dim=(2, 3), keepdim=True)).norm(dim=1, keepdim=True)
    maps = F.avg_pool2d(distance, patch) + 1e-6  # (N, 1, h, w), positive everywhere
    return maps.expand(-1, heads, -1, -1)


def head_jaccards(maps: Tensor, true_masks: Tensor) -> list[float]:
    """Return each head's mean Jaccard: maps (N, K, h, w), true_masks (N, S, S) -> K numbers."""
    size = tuple(true_masks.shape[-2:])
    masks = upsample_maps(attention_mask(maps, KEEP_MASS), size)  # (N, K, S, S)
    return jaccard(masks, true_masks[:, None]).mean(dim=0).tolist()


def score(maps: Tensor, true_masks: Tensor) -> dict:
    """Jaccard of the 60% masks with the true masks: maps (N, K, h, w), true_masks (N, S, S).

    Returns the mean map's Jaccard, each head's ("heads", K numbers), the best head's and its
    index, and the mean map's mask area (a fraction of the image).
    """
    size = tuple(true_masks.shape[-2:])
    mean_mask = upsample_maps(attention_mask(maps.mean(dim=1), KEEP_MASS), size)  # (N, S, S)
    per_head = head_jaccards(maps, true_masks)
    return {
        "mean_map": float(jaccard(mean_mask, true_masks).mean()),
        "heads": per_head,
        "best_head": max(per_head),
        "best_head_index": per_head.index(max(per_head)),
        "area": float(mean_mask.float().mean()),
    }


@torch.no_grad()
def all_maps(backbone: nn.Module, images: Tensor) -> Tensor:
    """Return the [CLS] attention maps of every image: (N, C, S, S) -> (N, K, h, w)."""
    return torch.cat([cls_attention_maps(backbone, x) for x in images.split(256)])


def random_patches(n: int, heads: int, grid: int, seed: int) -> Tensor:
    """Uniform random maps, a fresh one per scene (a mask that knows nothing): (N, K, h, w)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, grid, grid, generator=generator).expand(n, heads, grid, grid)


def shape_knn(backbone: nn.Module, train_ds, test_images: Tensor, test_labels: Tensor) -> float:
    """Return the kNN accuracy on the shape class of the [CLS] features (DINO's protocol)."""
    train_f, train_y = ev.embed_dataset(backbone, train_ds, 512, "cpu")
    test_f = torch.cat([backbone(x) for x in test_images.split(512)])
    return ev.knn_accuracy(train_f, train_y, test_f, test_labels)


class AttentionCurve:
    """The teacher's attention on held-out scenes at a few steps of the DINO run.

    It stands in for the trainer's online kNN evaluation (``trainer.OnlineEval``, which has the
    same ``of``/``due``/call protocol and is called with the method at the chosen steps, in no
    gradient, leaving training as it was), so the curve costs no second run. The number it
    returns is what the run's metrics.jsonl then records as "knn": here, the mean Jaccard.

    Args:
        images: (N, C, S, S) held-out scenes; masks: (N, S, S) their true object masks.
        points: how many evaluations, evenly spread over the run (the last at its end).
    """

    def __init__(self, images: Tensor, masks: Tensor, points: int) -> None:
        self.images, self.masks, self.points = images, masks, points
        self.steps: set[int] = set()
        self.rows: list[dict] = []  # one per evaluation: step, Jaccard of the mean and each head
        self.maps: dict[int, Tensor] = {}  # step -> (F, K, h, w) maps of the figure's scenes
        self._step = 0

    def of(self, config: TrainConfig, total: int, device) -> AttentionCurve:
        """Called by the trainer in place of ``OnlineEval.of``: choose the steps."""
        self.steps = {round(total * (k + 1) / self.points) for k in range(self.points)}
        return self

    def due(self, step: int) -> bool:
        self._step = step
        return step in self.steps

    @torch.no_grad()
    def __call__(self, method) -> float:
        maps = all_maps(method.teacher_backbone, self.images)  # (N, K, h, w), eval mode inside
        row = score(maps, self.masks) | {"step": self._step}
        self.rows.append(row)
        self.maps[self._step] = maps[:CURVE_SCENES]
        return row["mean_map"]


CURVE_SCENES = 2  # held-out scenes drawn at each step of the curve figure
COVERAGE_DRAWS = 8  # crops drawn per scene to measure how much of the object they hold
MULTICROP_KEYS = set(MultiCrop.__dataclass_fields__)  # the view options the crops read


def crop_coverage(masks: Tensor, spec, draws: int, seed: int) -> dict[str, float]:
    """How much of the object the recipe's crops hold, from ``draws`` crops per scene.

    The crop boxes are drawn as the views draw them (``full_resolution.crop_box``: area, aspect
    ratio and position; the rotation of the recipe is left out).

    Args:
        masks: (N, S, S) true object masks; spec: one ``CropSpec`` of the recipe.

    Returns:
        the mean share of the object's pixels inside a crop, the mean share of a crop that is
        object, and the fractions of crops holding at least half of the object and less than
        5% of it.
    """
    generator = torch.Generator().manual_seed(seed)
    S = masks.shape[-1]
    inside, share = [], []
    for mask in masks:
        area = mask.sum().clamp(min=1)
        for u in torch.rand(draws, 4, generator=generator):
            top, left, h, w = crop_box(spec, S, S, u)
            crop = mask[top : top + h, left : left + w]
            inside.append(float(crop.sum() / area))
            share.append(float(crop.float().mean()))
    held = torch.tensor(inside)
    return {
        "object_inside": float(held.mean()),
        "crop_is_object": sum(share) / len(share),
        "half_or_more": float((held >= 0.5).float().mean()),
        "under_5pct": float((held < 0.05).float().mean()),
    }


def load_config(path: Path | None, steps: int | None, seed: int) -> TrainConfig:
    """Read the recipe (a TOML file; None: the built-in one) with this benchmark's length and seed.

    The built-in recipe's name is recorded in the config, so the trainer does not apply it twice.
    """
    values = load_toml(path) if path is not None else load_recipe(RECIPE) | {"recipe": RECIPE}
    if steps is not None:
        values.pop("epochs", None)
        values["steps"] = steps
    values["seed"] = seed
    return TrainConfig.from_dict(values, source=str(path or f"recipe {RECIPE}"))


@torch.no_grad()
def layer_maps(backbone: nn.Module, images: Tensor) -> list[Tensor]:
    """Return the [CLS] attention of every block, first to last: depth x (N, K, h, w)."""
    return [
        torch.cat([cls_attention_maps(backbone, x, layer) for x in images.split(256)])
        for layer in range(len(backbone.blocks))
    ]


@torch.no_grad()
def rollout_maps(backbone: nn.Module, images: Tensor) -> Tensor:
    """Attention rollout (Abnar and Zuidema 2020) from [CLS] to the patches: (N, 1, h, w).

    The product over blocks of the head-averaged attention with the residual added (0.5 A +
    0.5 I, rows renormalised); the [CLS] row without its [CLS] column, normalised to sum to 1.
    """
    backbone.eval()
    out = []
    for x in images.split(256):
        rolled = None
        for layer in range(len(backbone.blocks)):
            attn = backbone.last_attention(x, layer).float().mean(dim=1)  # (n, T, T)
            attn = 0.5 * attn + 0.5 * torch.eye(attn.shape[-1])
            attn = attn / attn.sum(dim=-1, keepdim=True)
            rolled = attn if rolled is None else attn @ rolled
        row = rolled[:, 0, 1:]
        out.append(row / row.sum(dim=-1, keepdim=True))
    grid = backbone.grid
    return torch.cat(out).reshape(-1, 1, grid, grid)


def _eval_backbones(backbones: dict, train_ds, images, labels, true_masks, fit) -> dict:
    """Score each encoder's attention on the held-out scenes, and its shape kNN.

    ``fit`` = (images, masks) of training scenes: the layer whose [CLS] attention matches their
    masks best is each encoder's "chosen layer", then scored on the held-out scenes.
    """
    out = {}
    for name, backbone in backbones.items():
        backbone.eval()
        scores = [score(m, true_masks) for m in layer_maps(backbone, images)]
        out[name] = scores[-1] | {"knn": shape_knn(backbone, train_ds, images, labels)}
        held = [s["mean_map"] for s in scores]
        fitted = [score(m, fit[1])["mean_map"] for m in layer_maps(backbone, fit[0])]
        chosen = max(range(len(fitted)), key=fitted.__getitem__)
        out[name] |= {"layers": held, "chosen_layer": chosen, "chosen": held[chosen]}
        out[name]["rollout"] = score(rollout_maps(backbone, images), true_masks)["mean_map"]
    return out


def run_seed(args: argparse.Namespace, seed: int, workdir: Path) -> tuple[dict, dict]:
    """Train and score every encoder for one seed; return (rows, pictures for the figure)."""
    curve = None
    if args.dino_run is None:
        config = load_config(args.config, args.steps, seed)
        config = dataclasses.replace(
            config,
            out=str(workdir / f"dino-seed{seed}"),
            eval=False,
            progress=False,
            device=args.device,
            num_workers=args.num_workers,
        )
        if args.curve_points and seed == args.seeds[0]:  # the diagnosis: one seed is enough
            test = build_dataset(config.data, train=False, seed=seed)
            n = min(args.curve_scenes, len(test))
            scenes = torch.stack([test[i][0] for i in range(n)])
            curve = AttentionCurve(scenes, test.masks[:n], args.curve_points)
            trainer.OnlineEval, online = curve, trainer.OnlineEval
            try:
                run_dir = train(config)
            finally:
                trainer.OnlineEval = online
        else:
            run_dir = train(config)
    else:
        run_dir = args.dino_run
    method, config = load_run(run_dir)
    config = dataclasses.replace(config, device=args.device, num_workers=args.num_workers)
    summary = json.loads((Path(run_dir) / SUMMARY_FILE).read_text())
    steps, dino_seconds = summary["steps"], summary["train_seconds"]

    train_ds = build_dataset(config.data, train=True, seed=config.seed)
    test = build_dataset(config.data, train=False, seed=config.seed)
    n = min(args.test_size, len(test))
    images = torch.stack([test[i][0] for i in range(n)])  # (N, C, S, S)
    true_masks, labels = test.masks[:n], test.labels[:n]  # (N, S, S), (N,)

    backbones = {"DINO (teacher)": method.teacher_backbone, "DINO (student)": method.backbone}
    supervised = args.supervised and args.seeds.index(seed) < args.supervised_seeds
    if supervised:
        classifier, sup_seconds, sup_steps = train_supervised(config, build_method(config).backbone)
        backbones["supervised (labels)"] = classifier.backbone
    backbones["random init"] = build_method(config).backbone  # the weights DINO started from
    m = min(args.test_size, len(train_ds))  # training scenes that choose each encoder's layer
    fit = (torch.stack([train_ds[i][0] for i in range(m)]), train_ds.masks[:m])
    rows = _eval_backbones(backbones, train_ds, images, labels, true_masks, fit)
    K, grid = method.backbone.heads, method.backbone.grid
    rows["centre prior (no network)"] = score(center_prior(n, K, grid), true_masks)
    rows["random patches (no network)"] = score(random_patches(n, K, grid, seed), true_masks)
    saliency = contrast_saliency(images, method.backbone.patch_size, K)
    rows["contrast saliency (no network)"] = score(saliency, true_masks)
    for row in rows.values():
        row["seconds"], row["steps"] = 0.0, 0
    rows["DINO (teacher)"] |= {"seconds": dino_seconds, "steps": steps}
    rows["DINO (student)"] |= {"seconds": dino_seconds, "steps": steps}
    if supervised:
        rows["supervised (labels)"] |= {"seconds": sup_seconds, "steps": sup_steps}
        rows["supervised (labels)"]["accuracy"] = accuracy(classifier, images, labels)
    with torch.no_grad():
        maps = {name: all_maps(backbone, images[:8]) for name, backbone in backbones.items()}
    pictures = {"images": images[:8], "masks": true_masks[:8], "maps": maps}
    if curve is not None:
        start = all_maps(backbones["random init"], curve.images)  # step 0: DINO's first weights
        curve.maps[0] = start[:CURVE_SCENES]
        row = score(start, curve.masks) | {"step": 0}
        curve.rows.insert(0, row)
    recipe = MultiCrop(**{k: v for k, v in config.view_options.items() if k in MULTICROP_KEYS})
    specs = recipe.recipe(images.shape[-1], images.shape[1]).views
    coverage = {
        "global": crop_coverage(true_masks, specs[0], COVERAGE_DRAWS, seed),
        "local": crop_coverage(true_masks, specs[-1], COVERAGE_DRAWS, seed),
    }
    info = {
        "image": tuple(images.shape[1:]),
        "n": n,
        "patch": method.backbone.patch_size,
        "grid": grid,
        "heads": K,
        "backbone": config.backbone_options,
        "object_area": float(true_masks.float().mean()),
        "chance": 1 / len(test.class_names),
    }
    return rows, {"pictures": pictures, "info": info, "curve": curve, "coverage": coverage}


def _cell(values: list[float], fmt: str) -> str:
    mean = sum(values) / len(values)
    if len(values) == 1:
        return format(mean, fmt)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{format(mean, fmt)} ± {format(std, fmt)}"


def print_table(per_seed: list[dict], seeds: list[int], info: dict) -> None:
    """Print the Markdown table (mean ± std over seeds) and the per-seed headline numbers."""
    bb = info["backbone"]
    print(
        f"\nshapes {info['image']}, {info['n']} held-out scenes, ViT patch {info['patch']} "
        f"({info['grid']}x{info['grid']} patches), dim {bb.get('dim')}, depth {bb.get('depth')}, "
        f"{info['heads']} heads; seeds {seeds}; masks keep {KEEP_MASS:.0%} of the [CLS] "
        f"attention mass; objects cover {info['object_area']:.1%} of the pixels\n"
    )
    print(
        "| encoder | training | train s | **Jaccard, last layer** | best head | mask area "
        "| **Jaccard, layer chosen on training scenes** | kNN shape acc. |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in per_seed[0]:
        rows = [results[name] for results in per_seed if name in results]
        steps = rows[0]["steps"]
        what = "none" if not steps else ("DINO" if "DINO" in name else "cross-entropy")
        what += f", {steps} steps" if steps else ""
        knn = _cell([r["knn"] for r in rows], ".1%") if "knn" in rows[0] else "-"
        chosen = "-"
        if "chosen" in rows[0]:
            layers = "/".join(str(r["chosen_layer"]) for r in rows)
            chosen = f"**{_cell([r['chosen'] for r in rows], '.3f')}** (layer {layers})"
        print(
            f"| {name} | {what} | {_cell([r['seconds'] for r in rows], '.0f') if steps else '-'} | "
            f"**{_cell([r['mean_map'] for r in rows], '.3f')}** | "
            f"{_cell([r['best_head'] for r in rows], '.3f')} | "
            f"{_cell([r['area'] for r in rows], '.1%')} | {chosen} | {knn} |"
        )
    print("\nJaccard of the head-averaged [CLS] attention of each layer, and of the rollout:\n")
    depth = len(per_seed[0]["DINO (teacher)"]["layers"])
    print("| encoder | " + " | ".join(f"layer {k}" for k in range(depth)) + " | rollout |")
    print("|---|" + "---:|" * (depth + 1))
    for name in per_seed[0]:
        rows = [results[name] for results in per_seed if name in results]
        if "layers" in rows[0]:
            cells = [_cell([r["layers"][k] for r in rows], ".3f") for k in range(depth)]
            rollout = _cell([r["rollout"] for r in rows], ".3f")
            print(f"| {name} | " + " | ".join(cells) + f" | {rollout} |")
    print()
    for readout, key in (("last layer", "mean_map"), ("layer chosen on training scenes", "chosen")):
        for who in ("DINO (teacher)", "DINO (student)"):
            dino = [r[who][key] for r in per_seed]
            bars = {
                "random init": [r["random init"][key] for r in per_seed],
                "centre prior": [r["centre prior (no network)"]["mean_map"] for r in per_seed],
                "contrast saliency": [
                    r["contrast saliency (no network)"]["mean_map"] for r in per_seed
                ],
            }
            beats = [
                f"{bar} {'yes' if all(d > b for d, b in zip(dino, v, strict=True)) else 'NO'}"
                for bar, v in bars.items()
            ]
            print(f"{who}, {readout}: beats on every seed: {', '.join(beats)}")
            each = []
            for i, (seed, d) in enumerate(zip(seeds, dino, strict=True)):
                against = ", ".join(f"{bar} {v[i]:.3f}" for bar, v in bars.items())
                each.append(f"seed {seed}: {d:.3f} ({against})")
            print("  " + "; ".join(each))
    if "supervised (labels)" in per_seed[0]:
        acc = [r["supervised (labels)"]["accuracy"] for r in per_seed if "supervised (labels)" in r]
        print(
            f"the supervised ViT's own classifier: {_cell(acc, '.1%')} accuracy on these scenes "
            f"(chance {info['chance']:.0%})"
        )


def print_diagnosis(curve: AttentionCurve | None, coverage: dict) -> None:
    """Print the teacher's Jaccard over training (mean map and each head) and the crop coverage."""
    if curve is not None:
        print(f"\nDINO (teacher) over training, first seed, {len(curve.images)} held-out scenes:\n")
        heads = len(curve.rows[0]["heads"])
        print(
            "| step | Jaccard, mean map | "
            + " | ".join(f"head {k}" for k in range(heads))
            + " | mask area |"
        )
        print("|---:|---:|" + "---:|" * heads + "---:|")
        for row in curve.rows:
            cells = " | ".join(f"{j:.3f}" for j in row["heads"])
            print(f"| {row['step']} | {row['mean_map']:.3f} | {cells} | {row['area']:.1%} |")
    print("\nHow much of the object the recipe's crops hold (first seed's held-out scenes):\n")
    print("| crop | object pixels inside | crop that is object | holds >= half | holds < 5% |")
    print("|---|---:|---:|---:|---:|")
    for name, c in coverage.items():
        print(
            f"| {name} | {c['object_inside']:.1%} | {c['crop_is_object']:.1%} | "
            f"{c['half_or_more']:.1%} | {c['under_5pct']:.1%} |"
        )


def write_record(path: Path, args: argparse.Namespace, per_seed: list[dict], first: dict) -> None:
    """Write the numbers of the run as JSON, atomically (the pictures are the PNG figures)."""
    curve = first["curve"]
    record = {
        "command": "python benchmarks/attention_masks.py " + " ".join(args.argv),
        "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
        "torch": torch.__version__,
        "load_average_at_start": args.load_at_start,
        "wall_seconds": round(time.perf_counter() - args.started, 1),
        "seeds": args.seeds,
        "info": {k: v for k, v in first["info"].items() if k != "image"},
        "per_seed": per_seed,
        "curve": curve.rows if curve is not None else None,
        "coverage": first["coverage"],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(record, indent=1) + "\n"
    atomic_write(path, lambda handle: handle.write(text), mode="w")  # no half record if killed


def save_curve_figure(path: Path, curve: AttentionCurve, images: Tensor, masks: Tensor) -> None:
    """Draw the teacher's attention on the first scenes at each step of the curve."""
    rows = [(i, step) for i in range(CURVE_SCENES) for step in sorted(curve.maps)]
    save_attention_figure(
        path,
        torch.stack([images[i] for i, _ in rows]),
        torch.stack([curve.maps[step][i] for i, step in rows]),
        true_masks=torch.stack([masks[i] for i, _ in rows]),
        row_titles=[f"#{i} step {step}" for i, step in rows],
    )


def save_figure(path: Path, pictures: dict, scenes: int) -> None:
    """Draw DINO, supervised and random-init attention for the first held-out scenes."""
    picks = ["DINO (teacher)", "DINO (student)", "supervised (labels)", "random init"]
    picks = [name for name in picks if name in pictures["maps"]]
    rows = [(i, p) for i in range(min(scenes, len(pictures["images"]))) for p in picks]
    save_attention_figure(
        path,
        torch.stack([pictures["images"][i] for i, _ in rows]),
        torch.stack([pictures["maps"][p][i] for i, p in rows]),
        true_masks=torch.stack([pictures["masks"][i] for i, _ in rows]),
        row_titles=[f"#{i} {p.replace('(', '').replace(')', '')}" for i, p in rows],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"TOML recipe of the DINO run (default: the built-in {RECIPE})",
    )
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's length")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed")
    parser.add_argument(
        "--supervised-seeds",
        type=int,
        default=1,
        help="train the supervised ViT for the first N seeds only (its row is the yardstick)",
    )
    parser.add_argument("--dino-run", type=Path, default=None, help="reuse a trained DINO run")
    parser.add_argument("--test-size", type=int, default=500, help="held-out scenes scored")
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "attention.png")
    parser.add_argument("--figure-scenes", type=int, default=3)
    parser.add_argument(
        "--no-supervised",
        dest="supervised",
        action="store_false",
        help="leave out the ViT trained with labels (scores a --dino-run in about a minute)",
    )
    parser.add_argument(
        "--curve-points",
        type=int,
        default=5,
        help="score the DINO teacher's attention at this many steps of the first seed's run "
        "(0: not)",
    )
    parser.add_argument("--curve-scenes", type=int, default=200, help="held-out scenes scored")
    parser.add_argument(
        "--curve-figure", type=Path, default=ROOT / "docs" / "attention_training.png"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto (both trainings)")
    parser.add_argument("--num-workers", type=int, default=0, help="view-making processes")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads of this process (default: torch's); on 2 cores, 1 with "
        "--num-workers 1 gives each process a core",
    )
    parser.add_argument(
        "--keep-runs", type=Path, default=None, help="keep the DINO runs here (default: temp)"
    )
    parser.add_argument(
        "--record",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "attention_masks.json",
        help="where to write the run's numbers as JSON",
    )
    args = parser.parse_args()
    args.argv, args.started = sys.argv[1:], time.perf_counter()
    args.load_at_start = round(os.getloadavg()[0], 2)
    if args.dino_run is not None and len(args.seeds) > 1:
        parser.error("--dino-run scores one run; pass a single --seeds value")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the trainer does, for the supervised ViT's loop here too

    per_seed, first = [], None
    with tempfile.TemporaryDirectory(prefix="attention-bench-") as tmp:
        workdir = args.keep_runs or Path(tmp)
        for seed in args.seeds:
            rows, extra = run_seed(args, seed, workdir)
            per_seed.append(rows)
            first = first or extra
    write_record(args.record, args, per_seed, first)
    print_table(per_seed, args.seeds, first["info"])
    print_diagnosis(first["curve"], first["coverage"])
    save_figure(args.figure, first["pictures"], args.figure_scenes)
    print(f"\nnumbers: {args.record}\nfigure: {args.figure}")
    if first["curve"] is not None:
        pictures = first["pictures"]
        save_curve_figure(args.curve_figure, first["curve"], pictures["images"], pictures["masks"])
        print(f"figure over training: {args.curve_figure}")


if __name__ == "__main__":
    main()

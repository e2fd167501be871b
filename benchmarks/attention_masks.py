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
  global crops of every image (the same augmentations, without the local crops),
- two masks that know nothing of the image: a centred Gaussian over the patch grid (objects
  are never cut by the border, so the centre is a good guess) and uniform random patch scores.

Each encoder's kNN accuracy on the shape class (held-out scenes against the training split) is
printed next to it, to show what its representation has learned.

Headline number: the mean over held-out scenes of the Jaccard index between the true object mask
and the 60%-mass mask of the head-averaged attention map (one map per image, no head chosen by
looking at the answers). "Best head" picks, per model, the single head with the highest mean
Jaccard on these same scenes: an upper bound with the choice made on the test set.

  python benchmarks/attention_masks.py --num-workers 1 --threads 1   # 2-core CPU
  python benchmarks/attention_masks.py --seeds 0 1 2    # mean ± std over three seeds
  python benchmarks/attention_masks.py --dino-run runs/dino-vit-shapes   # reuse a DINO run

Letters used in shapes: N scenes, K heads, h/w patch grid, S image side.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from contrastkit.data import build_dataset
from contrastkit.evaluation import metrics as ev
from contrastkit.evaluation.attention import (
    attention_mask,
    cls_attention_maps,
    jaccard,
    save_attention_figure,
    upsample_maps,
)
from contrastkit.training.batches import step_batches
from contrastkit.training.config import TrainConfig
from contrastkit.training.files import load_toml
from contrastkit.training.presets import load_recipe
from contrastkit.training.runs import SUMMARY_FILE, build_method, load_run
from contrastkit.training.state import RunLength, TrainingState
from contrastkit.training.trainer import resolve_device, train, view_fn_of

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


def score(maps: Tensor, true_masks: Tensor) -> dict[str, float]:
    """Jaccard of the 60% masks with the true masks: maps (N, K, h, w), true_masks (N, S, S)."""
    size = tuple(true_masks.shape[-2:])
    mean_mask = upsample_maps(attention_mask(maps.mean(dim=1), KEEP_MASS), size)  # (N, S, S)
    head_masks = upsample_maps(attention_mask(maps, KEEP_MASS), size)  # (N, K, S, S)
    per_head = jaccard(head_masks, true_masks[:, None]).mean(dim=0)  # (K,)
    return {
        "mean_map": float(jaccard(mean_mask, true_masks).mean()),
        "best_head": float(per_head.max()),
        "best_head_index": int(per_head.argmax()),
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
def _eval_backbones(backbones: dict, train_ds, images, labels, true_masks) -> dict:
    out = {}
    for name, backbone in backbones.items():
        backbone.eval()
        out[name] = score(all_maps(backbone, images), true_masks)
        out[name]["knn"] = shape_knn(backbone, train_ds, images, labels)
    return out


def run_seed(args: argparse.Namespace, seed: int, workdir: Path) -> tuple[dict, dict]:
    """Train and score every encoder for one seed; return (rows, pictures for the figure)."""
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

    classifier, sup_seconds, sup_steps = train_supervised(config, build_method(config).backbone)
    backbones = {
        "DINO (teacher)": method.teacher_backbone,
        "DINO (student)": method.backbone,
        "supervised (labels)": classifier.backbone,
        "random init": build_method(config).backbone,  # the weights DINO started from
    }
    rows = _eval_backbones(backbones, train_ds, images, labels, true_masks)
    K, grid = method.backbone.heads, method.backbone.grid
    rows["centre prior (no network)"] = score(center_prior(n, K, grid), true_masks)
    rows["random patches (no network)"] = score(random_patches(n, K, grid, seed), true_masks)
    for row in rows.values():
        row["seconds"], row["steps"] = 0.0, 0
    rows["DINO (teacher)"] |= {"seconds": dino_seconds, "steps": steps}
    rows["DINO (student)"] |= {"seconds": dino_seconds, "steps": steps}
    rows["supervised (labels)"] |= {"seconds": sup_seconds, "steps": sup_steps}
    rows["supervised (labels)"]["accuracy"] = accuracy(classifier, images, labels)
    with torch.no_grad():
        maps = {name: all_maps(backbone, images[:8]) for name, backbone in backbones.items()}
    pictures = {"images": images[:8], "masks": true_masks[:8], "maps": maps}
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
    return rows, {"pictures": pictures, "info": info}


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
        "| encoder | training | train s | **Jaccard, mean of heads** | best head | mask area "
        "| kNN shape acc. |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in per_seed[0]:
        rows = [results[name] for results in per_seed]
        steps = rows[0]["steps"]
        what = "none" if not steps else ("DINO" if "DINO" in name else "cross-entropy")
        what += f", {steps} steps" if steps else ""
        knn = _cell([r["knn"] for r in rows], ".1%") if "knn" in rows[0] else "-"
        print(
            f"| {name} | {what} | {_cell([r['seconds'] for r in rows], '.0f') if steps else '-'} | "
            f"**{_cell([r['mean_map'] for r in rows], '.3f')}** | "
            f"{_cell([r['best_head'] for r in rows], '.3f')} | "
            f"{_cell([r['area'] for r in rows], '.1%')} | {knn} |"
        )
    dino = [r["DINO (teacher)"]["mean_map"] for r in per_seed]
    rand = [r["random init"]["mean_map"] for r in per_seed]
    ratios = [d / r if r > 0 else math.inf for d, r in zip(dino, rand, strict=True)]
    ratio = (sum(dino) / len(dino)) / (sum(rand) / len(rand))
    verdict = "met" if ratio >= 1.5 else "NOT met"
    per = ", ".join(f"seed {s}: {x:.2f}x" for s, x in zip(seeds, ratios, strict=True))
    print(
        f"\nDINO (teacher) / random init, mean Jaccard: {ratio:.2f}x ({per}); target >= 1.5x: "
        f"{verdict}"
    )
    acc = [r["supervised (labels)"]["accuracy"] for r in per_seed]
    print(
        f"the supervised ViT's own classifier: {_cell(acc, '.1%')} accuracy on these scenes "
        f"(chance {info['chance']:.0%})"
    )


def save_figure(path: Path, pictures: dict, scenes: int) -> None:
    """Draw DINO, supervised and random-init attention for the first held-out scenes."""
    picks = ["DINO (teacher)", "supervised (labels)", "random init"]
    rows = [(i, p) for i in range(min(scenes, len(pictures["images"]))) for p in picks]
    save_attention_figure(
        path,
        torch.stack([pictures["images"][i] for i, _ in rows]),
        torch.stack([pictures["maps"][p][i] for i, p in rows]),
        true_masks=torch.stack([pictures["masks"][i] for i, _ in rows]),
        row_titles=[f"#{i} {p.split(' (')[0]}" for i, p in rows],
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
    parser.add_argument("--dino-run", type=Path, default=None, help="reuse a trained DINO run")
    parser.add_argument("--test-size", type=int, default=500, help="held-out scenes scored")
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "attention.png")
    parser.add_argument("--figure-scenes", type=int, default=4)
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
    args = parser.parse_args()
    if args.dino_run is not None and len(args.seeds) > 1:
        parser.error("--dino-run scores one run; pass a single --seeds value")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    per_seed, first = [], None
    with tempfile.TemporaryDirectory(prefix="attention-bench-") as tmp:
        workdir = args.keep_runs or Path(tmp)
        for seed in args.seeds:
            rows, extra = run_seed(args, seed, workdir)
            per_seed.append(rows)
            first = first or extra
    print_table(per_seed, args.seeds, first["info"])
    save_figure(args.figure, first["pictures"], args.figure_scenes)
    print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()

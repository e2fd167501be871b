"""``contrastkit zeroshot``: classify images with a trained CLIP from label names alone."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``zeroshot`` subcommand."""
    parser = subparsers.add_parser(
        "zeroshot",
        help="zero-shot classification and retrieval with a trained CLIP run",
        description=(
            "Load RUN_DIR's CLIP (config.json + checkpoint.pt, loaded without executing code), "
            "turn every label into prompts with the templates, average the normalised prompt "
            "embeddings of each label (CLIP's prompt ensembling), and give every image of the "
            "held-out split the label whose prompts are most similar to it; no classifier is "
            "trained. Prints accuracy against chance and a confusion matrix; on shapes, "
            "accuracy on the (colour, shape) combinations seen in training and on those never "
            "seen; and image->text / text->image recall@1 and @5 over the captions."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder of --method clip")
    parser.add_argument(
        "--labels",
        help="comma-separated label names, e.g. 'circle,square,triangle,star,cross' (shapes "
        "also takes colours 'red,green,...' or combinations 'red star,...'); default: the "
        "dataset's class names",
    )
    parser.add_argument(
        "--template",
        action="append",
        dest="templates",
        metavar="TEMPLATE",
        help="a prompt with {} where the label goes; repeat it to average several "
        "(default: 'a photo of a {}', 'a picture of a {}', 'a {}')",
    )
    parser.add_argument(
        "--data",
        help="dataset spec to evaluate on, its held-out split (default: the run's --data); "
        "e.g. pairs:test.csv with a 'label' column",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda (default: auto)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate the run zero-shot and print the report; return the exit code."""
    from contrastkit.data import build_dataset, image_size_for
    from contrastkit.evaluation.zeroshot import (
        DEFAULT_TEMPLATES,
        check_labels,
        check_templates,
        evaluate_retrieval,
        evaluate_zero_shot,
        format_confusion,
    )
    from contrastkit.training.runs import load_run, read_config
    from contrastkit.training.trainer import resolve_device

    labels = None
    if args.labels is not None:
        labels = check_labels([part for part in args.labels.split(",") if part.strip()])
    try:
        templates = check_templates(args.templates or DEFAULT_TEMPLATES)
    except ValueError as err:
        raise ValueError(f"--template: {err}") from None
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be a positive integer, got {args.batch_size}")
    saved = read_config(args.run_dir)
    if saved.method != "clip":
        raise ValueError(
            f"{args.run_dir} holds a {saved.method!r} run; zeroshot needs a CLIP run "
            "(contrastkit train --method clip)"
        )
    device = resolve_device(args.device)
    method, config = load_run(args.run_dir, device=str(device))
    spec = args.data or config.data
    size = image_size_for(spec, getattr(config, "image_size", None))
    dataset = build_dataset(spec, train=False, seed=config.seed, image_size=size)
    if labels is None:
        labels = getattr(dataset, "class_names", None)
    print(f"zero-shot on the held-out split of {spec}: {len(dataset)} images")
    if labels is None:
        print("(the data has no labels: retrieval only)")
        _print_recall(evaluate_retrieval(method, dataset, args.batch_size))
        return 0
    result = evaluate_zero_shot(method, dataset, labels, templates, batch_size=args.batch_size)
    print(f"labels ({len(labels)}): {', '.join(labels)}")
    print(f"templates: {' | '.join(templates)}")
    print(
        f"accuracy       {result.accuracy:.3f}  (chance {result.chance:.3f}, "
        f"{result.num_samples} images)"
    )
    if result.num_unseen or result.num_seen:
        for name in ("seen", "unseen"):
            acc = getattr(result, f"{name}_accuracy")
            n = getattr(result, f"num_{name}")
            shown = f"{acc:.3f}" if acc is not None else "  -  "
            print(f"{name + ' combos':<14} {shown}  ({n} images)")
    _print_recall(result.recall)
    print()
    print(format_confusion(result.confusion, result.labels))
    return 0


def _print_recall(recall: dict[str, float]) -> None:
    if not recall:
        return
    for direction in ("image_to_text", "text_to_image"):
        name = direction.replace("_to_", "->")
        ks = sorted(int(k.split("@")[1]) for k in recall if k.startswith(direction))
        parts = "  ".join(f"R@{k} {recall[f'{direction}@{k}']:.3f}" for k in ks)
        print(f"{name:<14} {parts}")

"""Images/s of contrastkit's folder pipelines next to a typical lightly pipeline, in one run.

Each row delivers batches of two 224-px SimCLR views per image (decode + crop + augment) to this
process, from a fresh DataLoader over the same folder with the same ``--workers``:

- **lightly**: ``ImageFolder(DIR, transform=SimCLRTransform(input_size=224))`` + ``DataLoader(B,
  W, shuffle=True, drop_last=True)`` (``pip install "contrastkit[bench]"``; without lightly, its
  transform rebuilt from its defaults with torchvision, and the table says so), as a user runs it;
- **lightly, freed memory kept**: the same, with glibc's malloc keeping freed memory for reuse
  (``contrastkit.training.malloc``), to show what that setting alone is worth;
- **contrastkit folder**: the trainer's own loader, with the trainer's malloc setting:
  ``build_dataset("folder:DIR", train=True, image_size=224)``, ``build_batched_view_fn("pair",
  dataset)``, ``training.batches.step_batches``;
- **contrastkit shards**: the same on ``shards:SHARDS``, written once by ``contrastkit shard
  folder:DIR --out SHARDS --shard-size 1000`` (skipped, with the reason, without that command);
- **decode on device** (CUDA; ``--decode device`` tests it on a CPU): ``step_batches(...,
  decode="device")``: the workers only read bytes, ``--device`` decodes.

Each row runs in a fresh process of this script (nothing one row allocates or sets is left to the
next) and times ``--batches`` batches after ``--warmup`` (2) untimed ones, all in one epoch (no
worker starts or stops while timed). **images/s**: images (2 views each) per wall second, once
the views are materialised here (summed: that also waits for the device). **CPU ms/image**:
user + system time of this process (less this script's sampling thread) and of its descendants
(the workers), from ``/proc/PID/stat`` at the window's start and end while the workers live
(``getrusage`` sees workers only once reaped); Linux only. **peak RSS MiB**: the largest sum of
resident memory of this process and its descendants, sampled every 50 ms (it counts pages the
forked workers share once per process); **PSS MiB**: their proportional set sizes
(``/proc/PID/smaps_rollup``) at the window's end, the real footprint. ``--repeats``: the rows
take turns, the fastest of each is kept. On a shared CPU, trust ratios over absolute rates.

Without DIR, ``--images`` JPEGs of 500x375 px cut from scikit-image's photographs
(``contrastkit.data.photo_folder``, 10 classes) are generated once under ``--cache``:

  python benchmarks/folder_pipeline.py                      # 4,000 generated photos, all CPUs
  python benchmarks/folder_pipeline.py ~/photos --workers 2 --repeats 3 --json /tmp/fp.json
  python benchmarks/folder_pipeline.py --quick --decode device   # smoke run: checks the script
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import ImageFilter
from torch.utils.data import DataLoader

from contrastkit.data import build_dataset
from contrastkit.data.photo_folder import make_photo_folder
from contrastkit.training import batches as ck_batches
from contrastkit.training.malloc import keep_freed_memory
from contrastkit.transforms import build_batched_view_fn

PAGE, TICKS, MIB = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK"), 2**20
LOADERS = (ck_batches.step_batches, ck_batches.epoch_batches)  # does one take decode=?
KEPT = ", freed memory kept"  # a row run under contrastkit.training.malloc's setting
ROW = "ROW "  # the line that carries a row's numbers back from its process
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def _stat_fields(pid: int) -> list[str] | None:
    """Return the fields of /proc/PID/stat from field 3 (after the command name), None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """Return the pids of every live descendant of ``root`` (workers, their children)."""
    parent = {int(e): f[1] for e in os.listdir("/proc") if e.isdigit() and (f := _stat_fields(e))}
    found, frontier = [], [root]
    while frontier:
        frontier = [pid for pid, ppid in parent.items() if int(ppid) in frontier]
        found += frontier
    return found


def cpu_of(pid: int) -> float:
    """Return the CPU seconds (user + system, all threads) of process ``pid``, 0 if gone."""
    fields = _stat_fields(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / TICKS


def memory_of(pid: int, kind: str) -> int:
    """Return the resident (``"rss"``) or proportional (``"pss"``) bytes of ``pid``, 0 if gone."""
    try:
        if kind == "rss":
            return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        return next(int(ln.split()[1]) * 1024 for ln in lines if ln.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


class MemorySampler(threading.Thread):
    """Samples the summed RSS of this process and its descendants every 50 ms; keeps the peak."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.halt = 0, threading.Event()

    def sample(self) -> None:
        rss = sum(memory_of(pid, "rss") for pid in [os.getpid(), *descendants(os.getpid())])
        self.peak = max(self.peak, rss)

    def run(self) -> None:
        while not self.halt.wait(0.05):
            self.sample()

    def tree_cpu(self) -> dict[int, float]:
        """Return CPU seconds by pid: this process (less this thread's own) and its descendants."""
        cpu = {pid: cpu_of(pid) for pid in descendants(os.getpid())}
        own = time.clock_gettime(time.pthread_getcpuclockid(self.ident))
        return cpu | {os.getpid(): time.process_time() - own}


def measure(views_iter, *, batch_size: int, warmup: int, batches: int, seconds: float) -> dict:
    """Time up to ``batches`` batches of B images after ``warmup`` (>= 1) untimed ones.

    ``views_iter`` is a generator of batches, each 2 view tensors (B, 3, S, S); timing stops
    after the batch that passes ``seconds``.
    """
    (sampler := MemorySampler()).start()
    try:
        done, start, cpu0 = 0, 0.0, {}
        for i, views in enumerate(views_iter):
            float(sum(v.sum() for v in views))  # materialised, and the device has finished
            if i == warmup - 1:
                start, cpu0 = time.perf_counter(), sampler.tree_cpu()
            elif i >= warmup:
                done += 1
                if done >= batches or time.perf_counter() - start >= seconds:
                    break
        if not done:
            raise ValueError(f"the loader gave fewer than {warmup + 1} batches")
        wall, cpu1 = time.perf_counter() - start, sampler.tree_cpu()
        pss = sum(memory_of(pid, "pss") for pid in cpu1)
    finally:
        sampler.halt.set()
        sampler.join()
        views_iter.close()  # the DataLoader's workers exit here
    images, cpu = done * batch_size, sum(c - cpu0.get(pid, 0.0) for pid, c in cpu1.items())
    row = {"images_per_s": images / wall, "cpu_s_per_image": cpu / images, "timed_batches": done}
    return row | {"peak_rss_mib": sampler.peak / MIB, "pss_mib": pss / MIB, "wall_s": wall}


def lightly_blur(image):
    """Return lightly's ``GaussianBlur`` of a PIL image: radius U(0.1, 2), with probability 0.5."""
    if np.random.random_sample() >= 0.5:
        return image
    return image.filter(ImageFilter.GaussianBlur(radius=np.random.uniform(0.1, 2)))


def two_views(view, image) -> list:
    """Return [view(image), view(image)], as lightly's ``MultiViewTransform`` does."""
    return [view(image), view(image)]


def lightly_transform(size: int):
    """Return (lightly's ``SimCLRTransform(input_size=size)``, what it is).

    Without lightly: its defaults rebuilt with torchvision v2 (lightly 1.6's own base), step for
    step: RandomResizedCrop(scale 0.08-1), flip 0.5, ColorJitter(0.8, 0.8, 0.8, 0.2) with p 0.8,
    grayscale 0.2, PIL Gaussian blur (sigma 0.1-2) with p 0.5, tensor, ImageNet normalisation.
    """
    try:
        import lightly
        from lightly.transforms import SimCLRTransform
    except ImportError:
        from torchvision.transforms import v2 as T

        jitter = T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8)
        steps = [T.RandomResizedCrop(size, scale=(0.08, 1.0)), T.RandomHorizontalFlip(0.5), jitter]
        steps += [T.RandomGrayscale(0.2), lightly_blur, T.ToImage()]
        view = T.Compose([*steps, T.ToDtype(torch.float32, scale=True), T.Normalize(**IMAGENET)])
        return partial(two_views, view), "no lightly: SimCLRTransform rebuilt in torchvision"
    return SimCLRTransform(input_size=size), f"lightly {lightly.__version__}"


def lightly_pipeline(folder: Path, args, device: torch.device):
    """Return (batches, batches per epoch, what): the typical lightly pipeline on ``folder``."""
    from torchvision.datasets import ImageFolder

    transform, what = lightly_transform(args.size)
    dataset = ImageFolder(str(folder), transform=transform)
    torch.manual_seed(0)
    B, W = args.batch_size, args.workers
    loader = DataLoader(dataset, B, shuffle=True, drop_last=True, num_workers=W)

    def batches():
        for views, _ in loader:
            yield [v.to(device, non_blocking=True) for v in views]

    return batches(), len(loader), f"{len(dataset)} images, {what}"


def contrastkit_pipeline(spec: str, args, device: torch.device, decode: str | None = None):
    """Return (batches, batches per epoch, what): the trainer's loader on ``spec``."""
    dataset = build_dataset(spec, train=True, image_size=args.size)
    view_fn = build_batched_view_fn("pair", dataset)
    per_epoch = len(dataset) // args.batch_size
    total = min(per_epoch, args.warmup + args.batches)  # one epoch: one set of workers
    loading = {"num_workers": args.workers, "device": device, "start_step": 0, "total_steps": total}
    loading |= {} if decode is None else {"decode": decode}
    steps = ck_batches.step_batches(dataset, view_fn, seed=0, batch_size=args.batch_size, **loading)
    mode = "streamed" if getattr(dataset, "full_resolution", False) else "in memory"

    def batches():
        try:
            yield from (batch.views for batch in steps)
        finally:
            steps.close()  # its DataLoader's workers exit now, not when collected

    return batches(), per_epoch, f"{len(dataset)} train images, {mode}"


def default_cache() -> Path:
    """Return where generated benchmark data is kept: ~/.cache/contrastkit/bench (XDG)."""
    xdg = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return (xdg / "contrastkit" / "bench").expanduser()


def generated_photos(cache: Path, n: int) -> Path:
    """Return the folder of ``n`` generated 500x375 JPEGs in ``cache`` (made once, atomically)."""
    folder = cache / f"photos-{n}"
    if not folder.exists():
        print(f"generating {n} JPEGs of 500x375 px into {folder} (once)...", flush=True)
        staging = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
        os.replace(make_photo_folder(staging, n), folder)
    return folder


def photo_folder(args) -> Path:
    """Return DIR, or the generated folder of ``--images`` photos."""
    if args.dir is not None:
        return args.dir.expanduser().resolve()
    return generated_photos(args.cache, args.images)


def shards_of(folder: Path, args) -> tuple[Path | None, str]:
    """Return (the shards of ``folder``, "") made once by ``contrastkit shard``, or (None, why)."""
    key = hashlib.sha1(str(folder).encode()).hexdigest()[:10]
    shards = args.shards or args.cache / f"shards-{folder.name}-{key}"
    if shards.exists():
        return shards, ""
    command = [sys.executable, "-m", "contrastkit", "shard"]
    if subprocess.run([*command, "--help"], capture_output=True).returncode != 0:
        return None, "skipped: this contrastkit has no 'shard' subcommand"
    print(f"writing shards of {folder} into {shards} (once)...", flush=True)
    staging = shards.with_name(f"{shards.name}.partial-{os.getpid()}")
    staging.parent.mkdir(parents=True, exist_ok=True)
    argv = [*command, f"folder:{folder}", "--out", str(staging), "--shard-size", "1000"]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return None, f"skipped: contrastkit shard failed ({last})"
    os.replace(staging, shards)
    return shards, ""


def machine(device: torch.device) -> dict:
    """Return what the numbers were measured on."""
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    info = {"cpu": models[0] if models else platform.processor() or "unknown CPU"}
    info |= {"cpus": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0))}
    info |= {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    info |= {"gpu": torch.cuda.get_device_name(device)} if device.type == "cuda" else {}
    return info | {"load_average": round(os.getloadavg()[0], 2)}


def run_row(name: str, device: torch.device, build, args) -> dict:
    """Build one pipeline and measure it; one that cannot be built is skipped, with the reason."""
    row = {"pipeline": name, "device": device.type}
    if isinstance(build, str):  # known to be unavailable: why
        return row | {"skipped": build}
    try:
        batches, per_epoch, what = build()
    except (ValueError, TypeError, ImportError, OSError) as err:
        return row | {"skipped": f"skipped: {type(err).__name__}: {err}"}
    timed = min(args.batches, per_epoch - args.warmup)
    if timed < 1:
        batches.close()
        why = f"{per_epoch} batches per epoch; needs more images or a smaller --batch-size"
        return row | {"data": what, "skipped": f"skipped: {why}"}
    print(f"measuring {name} ({what})...", flush=True)
    options = {"batch_size": args.batch_size, "warmup": args.warmup, "seconds": args.seconds}
    return row | {"data": what} | measure(batches, batches=timed, **options)


def pipelines(folder: Path, args, device: torch.device) -> dict:
    """Return each row's name and its builder (or, where it is unavailable, why)."""
    spec, (shards, why) = f"folder:{folder}", shards_of(folder, args)

    def build(data: str, **options):  # built when its row runs
        return partial(contrastkit_pipeline, data, args, device, **options)

    rows = {"lightly": partial(lightly_pipeline, folder, args, device)}
    rows[f"lightly{KEPT}"] = rows["lightly"]  # what the allocator setting alone gives it
    rows["contrastkit folder"] = build(spec)
    rows["contrastkit shards"] = why or build(f"shards:{shards}")
    if args.decode == "device" or (args.decode == "auto" and device.type == "cuda"):
        decodes = any("decode" in inspect.signature(f).parameters for f in LOADERS)
        why = "skipped: step_batches takes no decode= here"
        name = "contrastkit folder, decode on device"
        rows[name] = build(spec, decode="device") if decodes else why
    return rows


def keeps_memory(name: str) -> bool:
    """Whether row ``name`` runs with glibc's malloc keeping freed memory, as the trainer does."""
    return name.startswith("contrastkit") or name.endswith(KEPT)


def run_isolated(name: str, args) -> dict:
    """Measure row ``name`` in a fresh process of this script (``--row NAME``); return its row."""
    argv = [sys.executable, __file__, *args.argv, "--row", name]
    done = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
    lines = done.stdout.splitlines()
    print(*(line for line in lines if not line.startswith(ROW)), sep="\n", flush=True)
    rows = [line[len(ROW) :] for line in lines if line.startswith(ROW)]
    if done.returncode != 0 or not rows:
        return {"pipeline": name, "skipped": f"skipped: its process exited {done.returncode}"}
    return json.loads(rows[-1])


def run_rows(folder: Path, args, device: torch.device) -> list[dict]:
    """Measure every pipeline ``--repeats`` times, taking turns, each run in a fresh process;
    keep each one's fastest run."""
    best = {}
    for _ in range(args.repeats):
        for name in pipelines(folder, args, device):  # makes the shards once, here
            row = run_isolated(name, args)
            if best.get(name, {}).get("images_per_s", -1) < row.get("images_per_s", 0):
                best[name] = row
    return list(best.values())


def measure_row(folder: Path, args, device: torch.device) -> None:
    """Measure the one row ``args.row`` in this process and print it (``run_isolated``)."""
    if keeps_memory(args.row):
        keep_freed_memory()
    build = pipelines(folder, args, device).get(args.row, f"skipped: no row {args.row!r}")
    row = run_row(args.row, device, build, args)
    print(ROW + json.dumps(row), flush=True)


def print_table(info: dict, args, rows: list[dict]) -> None:
    """Print the machine, the markdown table and the ratio to lightly."""
    gpu = f", {info['gpu']}" if "gpu" in info else ""
    line = [f"\n{info['cpu']}, {info['cpus_usable']} of {info['cpus']} CPUs usable{gpu},"]
    line += [f"torch {info['torch']} ({info['torch_threads']} threads),"]
    line += [f"load {info['load_average']}; batch {args.batch_size}, {args.workers} workers,"]
    print(*line, f"2 views of {args.size} px per image, best of {args.repeats}\n")
    measured = {r["pipeline"]: r for r in rows if "wall_s" in r}
    base = measured["lightly"]["images_per_s"] if "lightly" in measured else 0.0
    columns = "images/s | vs lightly | CPU ms/image | peak RSS MiB | PSS MiB"
    print(f"| pipeline | device | data | {columns} |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [r["pipeline"], r["device"], r.get("data", "")]
        if "skipped" in r:
            cells += [r["skipped"], "", "", "", ""]
        else:
            ratio = f"{r['images_per_s'] / base:.2f}x" if base else "-"
            cells += [f"{r['images_per_s']:,.1f}", ratio, f"{1000 * r['cpu_s_per_image']:.1f}"]
            cells += [f"{r['peak_rss_mib']:,.0f}", f"{r['pss_mib']:,.0f}"]
        print(f"| {' | '.join(cells)} |")
    if base and "contrastkit folder" in measured:
        ratio = measured["contrastkit folder"]["images_per_s"] / base
        verdict = "met" if ratio >= 2 else "not met"
        print(
            f"\ncontrastkit's streaming folder: {ratio:.2f}x the images/s of the lightly pipeline "
            f"with the same {args.workers} workers (target >= 2x: {verdict})"
        )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add = parser.add_argument
    add("dir", nargs="?", type=Path, help="image folder (default: generate one in --cache)")
    add("--images", type=int, default=4000, help="photos to generate when no DIR is given")
    add("--workers", type=int, default=os.cpu_count(), help="DataLoader workers of every row")
    add("--batch-size", type=int, default=64, help="images per batch")
    add("--batches", type=int, default=30, help="timed batches per row (within one epoch)")
    add("--warmup", type=int, default=2, help="untimed batches first (>= 1)")
    add("--seconds", type=float, default=120.0, help="stop timing a row after this long")
    add("--repeats", type=int, default=1, help="runs of every row, taking turns; best kept")
    add("--size", type=int, default=224, help="side of the views in pixels")
    add("--device", default="auto", help="where the views go: auto (cuda if any), cpu, cuda")
    decode = (
        "decode-on-device row: auto (CUDA only), device (also on a CPU, a test), workers (none)"
    )
    add("--decode", choices=("auto", "workers", "device"), default="auto", help=decode)
    add("--shards", type=Path, help="shards of DIR (default: written once in --cache)")
    add("--cache", type=Path, help="generated data (default: ~/.cache/contrastkit/bench)")
    add("--json", type=Path, help="also write the machine and the rows to this JSON file")
    add("--quick", action="store_true", help="smoke run: 600 photos, batch 32, 3 timed batches")
    add("--row", help=argparse.SUPPRESS)  # measure this one row here (run_isolated)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not Path("/proc/self/stat").exists():
        parser.error("this benchmark reads CPU time and memory from /proc: Linux only")
    if args.quick:
        args.images, args.batch_size, args.batches = 600, 32, 3
    for flag in ("images", "batch_size", "batches", "warmup", "repeats", "size"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.workers < 0:
        parser.error(f"--workers must be >= 0, got {args.workers}")
    if args.dir is not None and not args.dir.expanduser().is_dir():
        parser.error(f"DIR must be a folder of images, got {str(args.dir)!r}")
    args.cache = args.cache.expanduser() if args.cache else default_cache()
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    cuda = args.device == "auto" and torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu" if args.device == "auto" else args.device)
    folder = photo_folder(args)
    if args.row is not None:
        measure_row(folder, args, device)
        return 0
    rows = run_rows(folder, args, device)
    info = machine(device)
    print_table(info, args, rows)
    if args.json:
        record = {"machine": info, "folder": str(folder), "args": vars(args), "rows": rows}
        args.json.write_text(json.dumps(record, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

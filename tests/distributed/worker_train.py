"""Worker launched by torchrun: bad input, then several ``contrastkit train`` runs, one launch.

``python -m torch.distributed.run --nproc_per_node 2 tests/distributed/worker_train.py OUT``
starts the group once (torch is imported once per process: launches are the slow part), runs
the bad-input cases of worker_bad_input.py, then the command line ``contrastkit train`` for each
variant into OUT/<name>; ``train`` sees the running group and uses it. Every process writes
``OUT/rank{r}.json``: ``{"messages": bad-input messages, "codes": each run's exit code}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from worker_bad_input import check_bad_input

from contrastkit import distributed
from contrastkit.cli import main as cli
from contrastkit.training import ddp

# SGD: AdamW divides by the gradient's running magnitude, so the float rounding by which two
# processes differ from one (a sum in another order) can flip a near-zero update by a whole lr
COMMON = [
    *("train", "--data", "toy", "--steps", "8", "--no-eval", "--quiet"),
    *("--preset", "paper", "--optimizer", "sgd"),
]
NO_BATCH_NORM = ["--set", "projector_layers=1"]  # SimCLR head = one Linear: no batch statistics
VARIANTS = {
    "sync_bn": ["--sync-bn"],
    "local_bn": [],
    "chunked": [*NO_BATCH_NORM, "--chunk-size", "3"],
    "odd_batch": ["--batch-size", "15"],
    "nccl": ["--backend", "nccl"],
}


def main(out: Path) -> None:
    messages = check_bad_input()  # starts the process group
    codes = {
        name: cli([*COMMON, "--out", str(out / name), *flags]) for name, flags in VARIANTS.items()
    }
    result = {"messages": messages, "codes": codes}
    (out / f"rank{distributed.rank()}.json").write_text(json.dumps(result))
    ddp.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))

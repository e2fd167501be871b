"""Bad input under torchrun must raise a clear ValueError on every process, and never hang.

``check_bad_input()`` runs in every process of a launch (worker_train.py calls it first; alone:
``python -m torch.distributed.run --nproc_per_node 2 tests/distributed/worker_bad_input.py OUT``
writes ``OUT/rank{r}.json``). It returns, for each case, the error message this process got (or
"no error"). After the errors a correct gather must still work, which shows that no process was
left waiting in a collective.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import torch

from contrastkit import distributed
from contrastkit.losses import barlow_twins_loss, clip_loss, nt_xent
from contrastkit.training import ddp


def error_of(fn) -> str:
    try:
        fn()
    except ValueError as err:
        return str(err)
    return "no error"


def check_bad_input() -> dict:
    """Start the process group (gloo) and return each case's error message on this process."""
    messages = {"nccl_without_gpus": error_of(lambda: ddp.init_from_env("nccl"))}
    ddp.init_from_env("gloo", timeout=timedelta(seconds=60))
    r = distributed.rank()
    width = 8 if r == 0 else 6  # a different embedding width on each process
    rows = 4 if r == 0 else 3  # a different local batch on each process
    messages["nt_xent_width"] = error_of(
        lambda: nt_xent(torch.randn(4, width), torch.randn(4, width))
    )
    messages["nt_xent_rows"] = error_of(lambda: nt_xent(torch.randn(rows, 8), torch.randn(rows, 8)))
    messages["clip_width"] = error_of(
        lambda: clip_loss(torch.randn(4, width), torch.randn(4, width), torch.tensor(10.0))
    )
    messages["barlow_width"] = error_of(
        lambda: barlow_twins_loss(torch.randn(4, width), torch.randn(4, width))
    )
    messages["global_batch"] = error_of(lambda: ddp.local_batch_size(15))
    messages["backend_name"] = error_of(lambda: ddp.resolve_backend("mpi"))
    # the group is still in step: a correct collective after all those errors
    messages["after"] = distributed.gather(torch.tensor([float(r)])).tolist()
    return messages


def main(out: Path) -> None:
    messages = check_bad_input()
    (out / f"rank{distributed.rank()}.json").write_text(json.dumps(messages))
    ddp.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))

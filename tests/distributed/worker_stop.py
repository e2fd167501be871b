"""``contrastkit train`` under torchrun where rank 1 stops itself (SIGSTOP) after its third step.

Rank 0 then waits in the next step's gradient all-reduce for a peer that never answers; with
``--dist-timeout S`` it must end after about S seconds with one clear error line instead of
hanging. ``python -m torch.distributed.run --nproc_per_node 2 worker_stop.py train ...``.
"""

from __future__ import annotations

import os
import signal
import sys

from contrastkit import distributed
from contrastkit.cli import main
from contrastkit.methods.simclr import SimCLR

STOP_AFTER_STEP = 2
_original_after_step = SimCLR.after_step


def _stop_rank_one(self, step, total_steps, outputs):
    _original_after_step(self, step, total_steps, outputs)
    if step == STOP_AFTER_STEP and distributed.rank() == 1:
        os.kill(os.getpid(), signal.SIGSTOP)  # alive but silent, as a suspended job is


if __name__ == "__main__":
    SimCLR.after_step = _stop_rank_one
    sys.exit(main(sys.argv[1:]))

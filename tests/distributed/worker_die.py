"""``contrastkit train`` under torchrun where rank 0 kills itself (SIGKILL) after its third step.

Rank 1 then finds its peer gone in the next step's gradient all-reduce (gloo: "Connection closed
by peer"); it must end with one clear error line, not the backend's traceback.
``python -m torch.distributed.run --nproc_per_node 2 worker_die.py train ...``.
"""

from __future__ import annotations

import os
import signal
import sys

from contrastkit import distributed
from contrastkit.cli import main
from contrastkit.methods.simclr import SimCLR

DIE_AFTER_STEP = 2
_original_after_step = SimCLR.after_step


def _kill_rank_zero(self, step, total_steps, outputs):
    _original_after_step(self, step, total_steps, outputs)
    if step == DIE_AFTER_STEP and distributed.rank() == 0:
        os.kill(os.getpid(), signal.SIGKILL)  # gone at once, as an out-of-memory kill is


if __name__ == "__main__":
    SimCLR.after_step = _kill_rank_zero
    sys.exit(main(sys.argv[1:]))

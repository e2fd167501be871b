"""``contrastkit train`` under torchrun where one rank sends itself a signal after its third step.

``python -m torch.distributed.run --nproc_per_node 2 worker_signal.py RANK SIGNAL train ...``:

- ``1 SIGSTOP``: rank 1 is alive but silent, as a suspended job is; rank 0 then waits in the
  next step's gradient all-reduce for a peer that never answers, and ``--dist-timeout S`` must
  end it after about S seconds with one clear error line instead of a hang;
- ``0 SIGKILL``: rank 0 is gone at once, as after an out-of-memory kill; rank 1 finds its peer
  gone in the next all-reduce (gloo: "Connection closed by peer") and must end with one clear
  error line, not the backend's traceback.
"""

from __future__ import annotations

import os
import signal
import sys

from contrastkit import distributed
from contrastkit.cli import main
from contrastkit.methods.simclr import SimCLR

AFTER_STEP = 2
_original_after_step = SimCLR.after_step


def _signalling(rank: int, signum: int):
    def after_step(self, step, total_steps, outputs):
        _original_after_step(self, step, total_steps, outputs)
        if step == AFTER_STEP and distributed.rank() == rank:
            os.kill(os.getpid(), signum)

    return after_step


if __name__ == "__main__":
    rank, name, *argv = sys.argv[1:]
    SimCLR.after_step = _signalling(int(rank), getattr(signal, name))
    sys.exit(main(argv))

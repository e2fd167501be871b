"""Worker launched by torchrun: ``contrastkit train --data shards:DIR``, recording every read.

``python -m torch.distributed.run --nproc_per_node 2 worker_shards.py OUT ARGS...`` runs the
command line ``contrastkit train ARGS`` with ``ShardImages.read_bytes`` wrapped so that every
image read by this process or its DataLoader workers is appended to
``OUT/reads-rank{r}-{pid}.txt`` as ``shard-file member``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from contrastkit.cli import main as cli
from contrastkit.data.shards import ShardImages

_read_bytes = ShardImages.read_bytes


def main(out: Path, args: list[str]) -> int:
    rank = os.environ["RANK"]

    def recording(self, index: int) -> bytes:
        shard, _, _, member = self.members[index]
        with (out / f"reads-rank{rank}-{os.getpid()}.txt").open("a") as log:
            log.write(f"{self.shards[shard].name} {member}\n")
        return _read_bytes(self, index)

    ShardImages.read_bytes = recording
    return cli(args)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2:]))

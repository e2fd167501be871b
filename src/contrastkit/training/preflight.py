"""A first forward pass on two samples, before anything is written: settings that do not fit
together (a view recipe with one view for a two-view method, crops smaller than the backbone's
patches, ...) fail here with one line, not after the run folder was created.
"""

from __future__ import annotations

import torch

from contrastkit import distributed
from contrastkit.methods import Method
from contrastkit.training.batches import step_batches

PREFLIGHT_SAMPLES = 2


def preflight(method: Method, dataset, view_fn, seed: int) -> None:
    """Run ``method.training_step`` without gradient on the views of two samples.

    ``method`` must be set up already (``Method.setup``: DINO's schedules need the run length).

    The method's buffers (BatchNorm statistics, queues, centers) are put back afterwards and
    parameters do not change (no gradient, no optimizer step), so the run that follows is the
    same as without the check. The global RNG state is restored too.

    Raises:
        ValueError: the step fails; the message is the method's own (it names the setting) or
            the first line of torch's error.
    """
    saved = {name: buffer.clone() for name, buffer in method.named_buffers()}
    rng = torch.get_rng_state()
    # sharded data: the samples of this process's own shards, the only files it opens
    share = {"rank": distributed.rank(), "world_size": distributed.world_size()}
    batch = next(
        step_batches(
            dataset,
            view_fn,
            seed=seed,
            batch_size=min(PREFLIGHT_SAMPLES, len(dataset)),
            start_step=0,
            total_steps=1,
            **(share if hasattr(dataset, "shard_sizes") else {}),
            labels=method.needs_labels,  # the supervised yardstick: y (B,) after the views
        )
    )
    try:
        with torch.no_grad():
            method.training_step(batch.views)
    except ValueError:
        raise
    except (RuntimeError, IndexError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"the settings do not fit together: a first step on {len(batch.indices)} samples "
            f"failed before anything was written ({first[:300]})"
        ) from err
    finally:
        with torch.no_grad():
            for name, buffer in method.named_buffers():
                buffer.copy_(saved[name])
        torch.set_rng_state(rng)


__all__ = ["PREFLIGHT_SAMPLES", "preflight"]

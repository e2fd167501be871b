"""The training application's engine: one trainer for every method.

``trainer`` (the loop, resume), ``config`` (the run's settings), ``runs`` (run folders, building
a method from a config, evaluation of a run), ``batches`` (per-(seed, epoch, sample) views),
``optim`` and ``lars`` (optimizers, schedules), ``state`` (what a checkpoint holds, one
optimisation step), ``runlog`` (metrics.jsonl, progress bar), ``resolve`` (dataset defaults),
``checks`` (config value checks), ``files`` (TOML recipes, config.json), ``ddp`` (process
group, DDP), ``gradcache`` (huge batches in chunks),
``sync_batchnorm`` and ``monitor`` (collapse), ``export`` (encoders to safetensors), ``plots``.

The library (losses, models, methods, data, transforms, evaluation, distributed) never imports
this package; the CLI and the web demo do.
"""

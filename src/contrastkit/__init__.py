"""contrastkit: contrastive and self-supervised representation learning.

The public API is listed in ``__all__``; everything else is an implementation detail.

The library is ``losses``, ``models``, ``methods``, ``data``, ``transforms``, ``evaluation``,
``distributed`` and ``checkpoint``; ``training`` is the trainer the applications ``cli`` and
``web`` use. The library never imports ``training``, ``cli`` or ``web``
(``docs/architecture.md``; ``tests/test_layout.py`` checks it).

Every name in ``__all__`` is imported when first used (``contrastkit.losses``,
``contrastkit.load_encoder``), so ``import contrastkit`` alone stays light: it imports no torch.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings

__version__ = "0.1.0"

# Public names imported on first use (PEP 562), so that ``import contrastkit`` stays free of
# torch: name -> the module that defines it. (None may be the old path of a moved module below,
# such as ``train`` or ``export``: importing that path would overwrite the attribute.)
_LAZY = {
    "FitResult": "contrastkit.training.api",
    "METHODS": "contrastkit.methods",
    "TrainConfig": "contrastkit.training.config",
    "build_backbone": "contrastkit.models.backbones",
    "build_dataset": "contrastkit.data",
    "export_encoder": "contrastkit.training.export",
    "fit": "contrastkit.training.api",
    "load_encoder": "contrastkit.training.export",
    "load_run": "contrastkit.training.runs",
}
SUBPACKAGES = (
    "checkpoint",
    "data",
    "distributed",
    "evaluation",
    "losses",
    "methods",
    "models",
    "training",
    "transforms",
)

__all__ = ["__version__", *SUBPACKAGES, *_LAZY]


def __getattr__(name: str):
    """Import a public name, a subpackage or a moved module path the first time it is used."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in SUBPACKAGES or f"{__name__}.{name}" in MOVED_MODULES:
        return importlib.import_module(f"{__name__}.{name}")  # the import sets the attribute
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# Modules that moved in 0.2 when the flat package became folders. The old paths keep working for
# one release: importing one warns and hands out a view of the new module.
MOVED_MODULES = {
    "contrastkit.attention": "contrastkit.evaluation.attention",
    "contrastkit.backbones": "contrastkit.models.backbones",
    "contrastkit.batches": "contrastkit.training.batches",
    "contrastkit.clip2d": "contrastkit.web.clip2d",
    "contrastkit.config": (
        "contrastkit.training.config",
        "contrastkit.training.files",  # load_toml, read_values
        "contrastkit.training.resolve",  # resolve_config, accepted_options, default_out
    ),
    "contrastkit.evaluate": "contrastkit.evaluation.metrics",
    "contrastkit.export": "contrastkit.training.export",
    "contrastkit.gradcache": "contrastkit.training.gradcache",
    "contrastkit.heads": "contrastkit.models.heads",
    "contrastkit.lars": "contrastkit.training.lars",
    "contrastkit.momentum": "contrastkit.models.momentum",
    "contrastkit.monitor": "contrastkit.training.monitor",
    "contrastkit.plots": "contrastkit.training.plots",
    "contrastkit.runs": "contrastkit.training.runs",
    "contrastkit.schedules": "contrastkit.training.optim",
    "contrastkit.sync_batchnorm": "contrastkit.training.sync_batchnorm",
    "contrastkit.text": "contrastkit.models.text",
    "contrastkit.train": "contrastkit.training.trainer",
    "contrastkit.vit": "contrastkit.models.vit",
    "contrastkit.zeroshot": "contrastkit.evaluation.zeroshot",
    "contrastkit.transforms.multicrop": "contrastkit.transforms.images",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answer an old module path with a module that forwards every attribute to the new one."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        targets = MOVED_MODULES[spec.name]
        names = (targets,) if isinstance(targets, str) else targets  # a module split in parts
        warnings.warn(
            f"{spec.name} moved to {' and '.join(names)}; the old path will be removed in "
            "contrastkit 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        modules = [importlib.import_module(name) for name in names]
        alias = types.ModuleType(spec.name, modules[0].__doc__)

        def forward(attribute: str):
            for module in modules:
                if hasattr(module, attribute):
                    return getattr(module, attribute)
            raise AttributeError(f"module {spec.name!r} has no attribute {attribute!r}")

        alias.__getattr__ = forward
        alias.__dir__ = lambda: sorted({n for module in modules for n in dir(module)})
        return alias

    def exec_module(self, module):
        pass


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())

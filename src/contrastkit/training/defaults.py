"""What a config's unset fields become: the defaults of every run, and those of each dataset.

``resolve.resolve_config`` applies them under the built-in recipe and the user's settings
(``training/config.py`` re-exports them).
"""

from __future__ import annotations

from typing import Any

# Used when neither the dataset nor the user says otherwise.
GLOBAL_DEFAULTS: dict[str, Any] = {
    "epochs": 100,
    "batch_size": 256,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "warmup_epochs": 10.0,
    "log_every": 10,
}

# Small-data settings per dataset. ``method_options`` entries are applied only to methods whose
# constructor accepts them. The toy settings are the classic toy experiment's.
DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "toy": {
        "steps": 100,
        "batch_size": 16,
        "lr": 1e-2,
        "weight_decay": 0.0,
        "warmup_steps": 0,
        "backbone": "mlp",
        "backbone_options": {"hidden_dims": [8], "final_relu": True},
        "method_options": {"hidden_dim": 8, "out_dim": 4},
        "log_every": 1,
    },
    "digits": {
        "epochs": 40,
        "batch_size": 256,
        "lr": 2e-3,
        "weight_decay": 1e-4,
        "warmup_epochs": 4.0,
        "backbone": "cnn",
        "backbone_options": {"width": 32},
        "method_options": {"hidden_dim": 512, "out_dim": 128},
    },
}

DEFAULT_BACKBONE_BY_KIND = {"points": "mlp", "images": "cnn"}


__all__ = ["DATA_DEFAULTS", "DEFAULT_BACKBONE_BY_KIND", "GLOBAL_DEFAULTS"]

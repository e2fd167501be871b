"""Property-based tests of where settings enter: any input is a config or one ValueError.

Hypothesis draws field values of every JSON/TOML type (and keys that are not fields); whatever
it draws, ``TrainConfig.from_dict``, ``check_config``, ``load_toml`` and the ``--set`` parser
either accept it or raise ValueError, never another exception, and what they accept survives
the trip through ``config.json`` unchanged.
"""

import json
import math
from dataclasses import fields

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contrastkit.cli import build_parser
from contrastkit.cli.train import build_config
from contrastkit.training.config import TrainConfig, check_config
from contrastkit.training.files import load_toml

FIELDS = sorted(f.name for f in fields(TrainConfig))
EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["simclr", "toy", "digits", "cpu", "auto", "cosine", "adamw", "inf", "no"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)
config_dicts = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(max_size=10)), values, max_size=6
)


def _same(a, b) -> bool:
    """Equality that counts NaN equal to NaN (a NaN inside an option dict is not refused)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@EXAMPLES
@given(config_dicts)
def test_from_dict_gives_a_config_or_one_value_error(raw):
    try:
        config = TrainConfig.from_dict(raw, source="--config r.toml")
    except ValueError as err:
        assert "\n" not in str(err).strip()
        return
    try:
        check_config(config)
    except ValueError:
        return
    text = json.dumps(config.to_dict(), allow_nan=True)  # config.json
    again = TrainConfig.from_dict(json.loads(text), source="config.json")
    assert _same(again.to_dict(), config.to_dict())


@EXAMPLES
@given(st.text(max_size=200))
def test_any_toml_text_is_a_recipe_or_one_value_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("toml") / "recipe.toml"
    path.write_text(text, encoding="utf-8")
    try:
        recipe = load_toml(path)
    except ValueError as err:
        assert str(path) in str(err)
        return
    assert isinstance(recipe, dict)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["temperature", "hidden_dim", "views.std", "backbone.width", "x"]),
            st.one_of(st.text(max_size=8), st.sampled_from(["1e9", "NaN", "-1", "[1, 2]", "{}"])),
        ),
        max_size=3,
    )
)
def test_set_options_parse_into_a_config_or_one_value_error(pairs):
    argv = ["train", "--data", "toy"]
    for key, value in pairs:
        argv += ["--set", f"{key}={value}"]
    args = build_parser().parse_args(argv)
    try:
        config = build_config(args)
    except ValueError:
        return
    check_config(config)  # type checks passed; range checks of options come with the method

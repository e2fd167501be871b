"""The shared constructor checks: each names the argument, the expectation and the values."""

import math

import pytest

from contrastkit.methods.checks import (
    int_at_least,
    non_negative,
    positive,
    positive_ints,
    probability,
)


def test_good_values_pass():
    positive_ints(hidden_dim=1, out_dim=8192)
    int_at_least(2, projector_layers=2)
    positive(temperature=0.07, scale=1)
    non_negative(weight=0, epochs=1.5)
    probability(momentum=0.0, final_momentum=1)


@pytest.mark.parametrize(
    ("check", "values", "message"),
    [
        (positive_ints, {"queue_size": 0}, "queue_size must be an int >= 1, got 0"),
        (positive_ints, {"hidden_dim": 2.0}, "hidden_dim must be an int >= 1, got 2.0"),
        (positive_ints, {"out_dim": True}, "out_dim must be an int >= 1, got True"),
        (positive, {"temperature": math.nan}, "temperature must be a finite number > 0, got nan"),
        (positive, {"temperature": math.inf}, "temperature must be a finite number > 0, got inf"),
        (positive, {"temperature": "0.5"}, "temperature must be a finite number > 0, got '0.5'"),
        (non_negative, {"cov_coeff": -1.0}, "cov_coeff must be a finite number >= 0, got -1.0"),
        (non_negative, {"cov_coeff": math.inf}, "cov_coeff must be a finite number >= 0, got inf"),
        (probability, {"momentum": 1.5}, r"momentum must be in \[0, 1\], got 1.5"),
    ],
)
def test_bad_values_are_named(check, values, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        check(**values)


def test_the_first_bad_argument_is_named_next_to_its_siblings():
    with pytest.raises(ValueError) as error:
        positive_ints(hidden_dim=16, out_dim=0, projector_layers=-1)
    expected = "out_dim must be an int >= 1, got 0 (given hidden_dim=16, out_dim=0, "
    assert str(error.value) == expected + "projector_layers=-1)"
    with pytest.raises(ValueError, match="projector_layers must be an int >= 2, got 1"):
        int_at_least(2, projector_layers=1)

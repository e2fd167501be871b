"""VICReg: 3-layer expander, named terms, weighted 25/25/1."""

import pytest
import torch
from method_testing import changed, optimizer_step, random_views, snapshot, tiny_cnn

from contrastkit.methods.vicreg import VICReg


def test_vicreg_step_and_terms():
    method = VICReg(tiny_cnn(), hidden_dim=16, out_dim=16)
    before = {n: snapshot(getattr(method, n)) for n in ("backbone", "projector")}
    out = optimizer_step(method, random_views())
    assert torch.isfinite(out["loss"])
    for name, snap in before.items():
        assert changed(snap, getattr(method, name)), name
    terms = {k: float(out[k]) for k in ("invariance", "variance", "covariance")}
    expected = 25 * terms["invariance"] + 25 * terms["variance"] + terms["covariance"]
    assert float(out["loss"].detach()) == pytest.approx(expected, rel=1e-5)
    assert not any(out[k].requires_grad for k in terms)


def test_vicreg_coefficients_and_defaults():
    with torch.device("meta"):  # paper-sized heads, without allocating them
        method = VICReg(tiny_cnn())
    assert method.coeffs == {"sim_coeff": 25.0, "std_coeff": 25.0, "cov_coeff": 1.0}
    linears = [m for m in method.projector.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [8192, 8192, 8192]
    with pytest.raises(ValueError, match="std_coeff"):
        VICReg(tiny_cnn(), std_coeff=-1)

import pytest
import torch

from contrastkit.losses import nt_xent
from contrastkit.methods import METHODS, SimCLR
from contrastkit.models.backbones import build_backbone


def _simclr(**options):
    torch.manual_seed(0)
    return SimCLR(build_backbone("mlp", input_dim=2, hidden_dims=[8]), **options)


def test_registered_with_paper_defaults():
    assert METHODS["simclr"] is SimCLR and SimCLR.view_recipe == "pair"
    method = SimCLR(build_backbone("mlp", input_dim=2, hidden_dims=[8]))
    assert method.temperature == 0.5
    assert method.projector(torch.randn(4, 8)).shape == (4, 128)
    assert SimCLR.num_negatives(16) == 30


def test_training_step_is_nt_xent_of_the_projections():
    method = _simclr(hidden_dim=16, out_dim=4, temperature=0.3)
    torch.manual_seed(1)
    x1, x2 = torch.randn(6, 2), torch.randn(6, 2)
    out = method.training_step([x1, x2])
    z = method.projector(method.backbone(torch.cat([x1, x2])))
    assert torch.allclose(out["loss"], nt_xent(z[:6], z[6:], 0.3))
    assert out["embedding"].shape == (6, 4) and not out["embedding"].requires_grad
    z1, z2 = method.embed_views([x1, x2])
    assert torch.allclose(method.loss_from_embeddings([z1, z2])["loss"], out["loss"])


def test_embed_returns_h_not_z():
    method = _simclr(out_dim=4).eval()
    x = torch.randn(5, 2)
    assert torch.equal(method.embed(x), method.backbone(x))
    assert method.embed(x).shape == (5, 8)


def test_one_step_trains_backbone_and_head():
    method = _simclr(hidden_dim=16, out_dim=4)
    before = {n: p.detach().clone() for n, p in method.named_parameters()}
    optimizer = torch.optim.SGD(method.parameters(), lr=0.1)
    torch.manual_seed(2)
    out = method.training_step([torch.randn(8, 2), torch.randn(8, 2)])
    out["loss"].backward()
    optimizer.step()
    assert torch.isfinite(out["loss"])
    assert all(not torch.equal(before[n], p) for n, p in method.named_parameters())


def test_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        _simclr(temperature=0.0)
    with pytest.raises(ValueError, match="hidden_dim"):
        _simclr(out_dim=0)
    with pytest.raises(ValueError, match="2 tensors"):
        _simclr().training_step([torch.randn(4, 2)])

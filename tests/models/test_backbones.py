import builtins

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from contrastkit.models import vit as vit_module
from contrastkit.models.backbones import BACKBONES, build_backbone
from contrastkit.models.vit import VisionTransformer

SIZES = [(1, 8), (3, 32), (3, 64)]


@pytest.mark.parametrize("name", ["cnn", "resnet18", "vit"])
@pytest.mark.parametrize(("channels", "size"), SIZES)
def test_image_backbones_give_feature_dim(name, channels, size):
    torch.manual_seed(0)
    net = build_backbone(name, in_channels=channels, image_size=size).eval()
    h = net(torch.rand(2, channels, size, size))
    assert h.shape == (2, net.feature_dim)
    assert torch.isfinite(h).all()


def test_resnet50_feature_dim():
    net = build_backbone("resnet50", in_channels=1, image_size=8).eval()
    assert net(torch.rand(2, 1, 8, 8)).shape == (2, 2048) and net.feature_dim == 2048


def test_mlp_on_points_and_images():
    net = build_backbone("mlp", input_dim=2, hidden_dims=[8])
    assert net(torch.randn(5, 2)).shape == (5, 8) and net.feature_dim == 8
    assert (net(torch.randn(5, 2)) >= 0).all()  # final ReLU by default
    flat = build_backbone(
        "mlp", in_channels=1, image_size=8, hidden_dims=(32, 16), final_relu=False
    )
    out = flat(torch.rand(4, 1, 8, 8))
    assert out.shape == (4, 16) and (out < 0).any()


def test_resnet_keys_load_into_torchvision_strict():
    net = build_backbone("resnet18", image_size=32)  # CIFAR stem by default at 32px
    assert isinstance(net.conv1, nn.Conv2d) and net.conv1.kernel_size == (3, 3)
    assert isinstance(net.maxpool, nn.Identity)
    reference = torchvision.models.resnet18()
    expected = {k for k in reference.state_dict() if not k.startswith("fc.")}
    assert set(net.state_dict()) == expected
    reference.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    reference.maxpool = nn.Identity()
    reference.fc = nn.Identity()
    reference.load_state_dict(net.state_dict(), strict=True)
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(reference.eval()(x), net.eval()(x))


def test_resnet_imagenet_stem_when_asked():
    net = build_backbone("resnet18", image_size=32, cifar_stem=False)
    assert net.conv1.kernel_size == (7, 7) and isinstance(net.maxpool, nn.MaxPool2d)
    assert build_backbone("resnet18", image_size=224).conv1.kernel_size == (7, 7)


def test_vit_attention_shapes_and_rows_sum_to_one():
    torch.manual_seed(0)
    vit = build_backbone("vit", image_size=32, dim=48, depth=2, heads=3).eval()
    assert isinstance(vit, VisionTransformer) and vit.patch_size == 4
    x = torch.rand(2, 3, 32, 32)
    attn = vit.last_attention(x)
    assert attn.shape == (2, 3, 65, 65)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 3, 65))
    cls = vit.cls_attention(x)
    assert cls.shape == (2, 3, 64) and (cls >= 0).all()
    torch.testing.assert_close(cls.sum(-1), torch.ones(2, 3))


def test_vit_attention_of_any_layer_is_that_blocks_softmax():
    torch.manual_seed(0)
    vit = build_backbone("vit", image_size=16, patch_size=4, dim=24, depth=3, heads=2).eval()
    x = torch.rand(2, 3, 16, 16)
    t = vit.tokens(x)
    expected = []
    for block in vit.blocks:
        t, attn = block(t, return_attention=True)
        expected.append(attn)
    for layer in range(3):
        torch.testing.assert_close(vit.last_attention(x, layer), expected[layer])
        row = expected[layer][:, :, 0, 1:]
        torch.testing.assert_close(vit.cls_attention(x, layer), row / row.sum(-1, keepdim=True))
    torch.testing.assert_close(vit.last_attention(x, -3), expected[0])
    assert not torch.allclose(expected[0], expected[2])  # the layers really differ
    for layer in (3, -4):
        with pytest.raises(ValueError, match=r"layer must be in \[-3, 2\]"):
            vit.last_attention(x, layer)


def test_vit_explicit_attention_matches_fused_path():
    torch.manual_seed(0)
    vit = build_backbone("vit", image_size=16, patch_size=4, dim=24, depth=1, heads=2).eval()
    block = vit.blocks[0]
    t = vit.tokens(torch.rand(3, 3, 16, 16))
    fused = block(t)
    explicit, _ = block(t, return_attention=True)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)


def _float64_attention(q, k, v):
    # independent reference: softmax(q k^T / sqrt(d)) v in float64
    q, k, v = (x.double() for x in (q, k, v))
    weights = torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1)
    return weights @ v


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_attend_in_reduced_precision_matches_float64_with_its_gradients(dtype):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 17, 8) for _ in range(3))
    low = [x.to(dtype).requires_grad_() for x in (q, k, v)]
    assert vit_module.explicit_attention_wanted(low[0])
    out = vit_module.attend(*low)
    assert out.dtype == dtype
    grad_out = torch.randn_like(q)
    out.float().backward(grad_out)
    exact = [x.to(dtype).double().requires_grad_() for x in (q, k, v)]
    reference = _float64_attention(*exact)
    reference.backward(grad_out.double())
    torch.testing.assert_close(out.double(), reference, atol=3e-2, rtol=3e-2)
    for got, want in zip(low, exact, strict=True):
        torch.testing.assert_close(got.grad.double(), want.grad, atol=5e-2, rtol=5e-2)


def test_attend_is_the_fused_kernel_in_float32_and_for_long_sequences():
    short = torch.randn(1, 1, 8, 4)
    long = torch.randn(1, 1, vit_module.EXPLICIT_ATTENTION_MAX_TOKENS + 1, 4, dtype=torch.bfloat16)
    assert not vit_module.explicit_attention_wanted(short)
    assert not vit_module.explicit_attention_wanted(long)
    assert vit_module.explicit_attention_wanted(long[:, :, :-1])
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 9, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.equal(vit_module.attend(q, k, v), F.scaled_dot_product_attention(q, k, v))
    assert torch.autograd.gradcheck(vit_module.attend, (q, k, v))


def test_vit_block_in_bf16_autocast_matches_its_float32_output():
    torch.manual_seed(0)
    vit = build_backbone("vit", image_size=16, patch_size=4, dim=24, depth=2, heads=2).eval()
    x = torch.rand(3, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = vit(x)
    torch.testing.assert_close(low.float(), vit(x), atol=0.1, rtol=0.05)


def test_vit_runs_at_local_crop_size_with_interpolated_positions():
    torch.manual_seed(0)
    vit = build_backbone("vit", image_size=32, dim=48, depth=2, heads=3).eval()
    local = torch.rand(2, 3, 12, 12)  # a 3x3 patch grid instead of 8x8
    assert vit(local).shape == (2, 48)
    assert vit.last_attention(local).shape == (2, 3, 10, 10)
    pos = vit._position_embedding(3, 3)
    assert pos.shape == (1, 10, 48)
    torch.testing.assert_close(pos[:, 0], vit.pos_embed[:, 0])  # [CLS] position unchanged
    with pytest.raises(ValueError, match="patch_size"):
        vit(torch.rand(1, 3, 2, 2))


def test_vit_conv_stem_gives_the_patch_grid_at_every_crop_size():
    torch.manual_seed(0)
    vit = build_backbone("vit", image_size=32, patch_size=4, dim=48, depth=1, heads=3, stem="conv")
    convs = [m for m in vit.patch_embed if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs] == [(1, 1), (2, 2), (2, 2), (1, 1)]  # log2(4) downsamplings
    assert [c.out_channels for c in convs] == [12, 24, 48, 48]
    for side, grid in ((32, 8), (12, 3), (14, 3)):  # 14 px: the 2 px beyond 3 patches ignored
        tokens = vit.tokens(torch.rand(2, 3, side, side))
        assert tokens.shape == (2, 1 + grid * grid, 48)
    assert vit.cls_attention(torch.rand(2, 3, 32, 32)).shape == (2, 3, 64)
    with pytest.raises(ValueError, match="power of 2"):
        build_backbone("vit", image_size=30, patch_size=6, stem="conv")
    with pytest.raises(ValueError, match="stem must be one of patch, conv"):
        build_backbone("vit", stem="hybrid")


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ValueError, match="unknown backbone 'resnet9'") as info:
        build_backbone("resnet9")
    for name in BACKBONES:
        assert name in str(info.value)
    assert "timm:NAME" in str(info.value)


def test_unknown_option_is_named():
    with pytest.raises(ValueError, match="depthh"):
        build_backbone("vit", depthh=3)


def test_timm_missing_gives_install_hint(monkeypatch):
    real_import = builtins.__import__

    def fail_timm(name, *args, **kwargs):
        if name == "timm" or name.startswith("timm."):
            raise ImportError("No module named 'timm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fail_timm)
    monkeypatch.delitem(__import__("sys").modules, "timm", raising=False)
    with pytest.raises(
        ValueError, match=r"timm is not installed; pip install 'contrastkit\[timm\]'"
    ):
        build_backbone("timm:resnet18")


def test_timm_model_is_created_headless(monkeypatch):
    import types

    calls = {}

    def create_model(name, **kwargs):
        calls.update(kwargs, name=name)
        model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 7))
        model.num_features = 7
        return model

    monkeypatch.setitem(
        __import__("sys").modules, "timm", types.SimpleNamespace(create_model=create_model)
    )
    net = build_backbone("timm:tiny_thing", in_channels=3)
    assert net.feature_dim == 7
    assert calls == {"name": "tiny_thing", "num_classes": 0, "pretrained": False, "in_chans": 3}

"""``contrastkit export``: the backbone alone, loading strictly into torchvision and contrastkit."""

import pytest
import torch
import torchvision
from safetensors.torch import load_file
from torch import nn

from contrastkit.cli import main
from contrastkit.models.backbones import build_backbone
from contrastkit.training.export import (
    backbone_spec,
    describe_spec,
    encoder_state,
    export_encoder,
    load_encoder,
    read_encoder_spec,
)
from contrastkit.training.runs import load_run
from contrastkit.training.trainer import TrainConfig, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory):
    """A one-step SimCLR run with a CIFAR-stem ResNet-18 on 32x32 shapes."""
    out = tmp_path_factory.mktemp("export") / "run"
    config = TrainConfig(
        method="simclr",
        data="shapes",
        backbone="resnet18",
        steps=1,
        batch_size=4,
        method_options={"hidden_dim": 32, "out_dim": 16},
        eval=False,
        progress=False,
        out=str(out),
    )
    return train(config)


def _torchvision_cifar_resnet18() -> nn.Module:
    model = torchvision.models.resnet18()
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    model.fc = nn.Identity()
    return model


@pytest.fixture(scope="module")
def trained(resnet_run):
    """The run's method, reloaded."""
    return load_run(resnet_run)[0]


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_exported_resnet18_loads_strictly_into_torchvision(resnet_run, trained, tmp_path, suffix):
    path = export_encoder(resnet_run, tmp_path / f"encoder{suffix}")
    state = load_file(path) if suffix == ".safetensors" else torch.load(path, weights_only=True)
    assert not any(k.startswith(("projector", "backbone.")) for k in state)
    model = _torchvision_cifar_resnet18()
    model.load_state_dict(state, strict=True)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), trained.embed(x), rtol=0, atol=0)
    if suffix == ".safetensors":
        rebuilt = load_encoder(path)
        assert rebuilt.feature_dim == 512
        with torch.no_grad():
            torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


def test_cli_export_writes_the_file(resnet_run, tmp_path, capsys):
    out = tmp_path / "enc.safetensors"
    assert main(["export", str(resnet_run), "--out", str(out)]) == 0
    assert out.is_file() and "resnet18" in capsys.readouterr().out
    assert main(["export", str(resnet_run), "--out", str(out), "--overwrite"]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{run}", "--out", "{tmp}/enc.onnx"], "unknown format '.onnx'"),
        (["{run}", "--out", "{tmp}/missing/enc.pt"], "does not exist"),
        (["{tmp}/no-run", "--out", "{tmp}/enc.pt"], "{tmp}/no-run"),
        (["{run}", "--out", "{tmp}/exists.pt"], "exists; pass --overwrite"),
    ],
)
def test_cli_export_bad_input_is_one_line_and_writes_nothing(
    resnet_run, tmp_path, capsys, args, message
):
    (tmp_path / "exists.pt").write_bytes(b"keep me")
    argv = ["export"] + [a.format(run=resnet_run, tmp=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("contrastkit export: error:") and "\n" not in err
    assert message.format(tmp=tmp_path) in err
    assert (tmp_path / "exists.pt").read_bytes() == b"keep me"
    assert not list(tmp_path.glob("enc*")) and not list(tmp_path.glob(".enc*"))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_export_names_the_stem_and_records_it(resnet_run, tmp_path, capsys, suffix):
    out = tmp_path / f"enc{suffix}"
    assert main(["export", str(resnet_run), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "CIFAR stem (3x3 stride-1 conv1, no max-pool)" in printed and "options {}" not in printed
    if suffix == ".safetensors":
        assert read_encoder_spec(out)["options"] == {"cifar_stem": True}


def test_the_stem_is_read_off_the_weights():
    config = TrainConfig(backbone="resnet18", input_shape=[3, 96, 96])
    imagenet = encoder_state(build_backbone("resnet18", image_size=96))  # > 64 px: 7x7 conv1
    spec = backbone_spec(config, imagenet)
    assert spec["options"] == {"cifar_stem": False}
    assert "ImageNet stem" in describe_spec(spec)
    assert backbone_spec(TrainConfig(backbone="cnn", input_shape=[3, 8, 8]))["options"] == {}

"""contrastkit.fit: the user's own Dataset, tensors and nn.Module; bad inputs; resume refused."""

import json

import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

import contrastkit
from contrastkit.methods import SimCLR
from contrastkit.training.trainer import resume
from contrastkit.training.user_inputs import as_backbone, as_dataset

SMALL = {"method_options": {"hidden_dim": 16, "out_dim": 8}, "progress": False}


class Squares(Dataset):
    """24 RGB 8x8 images, bright or dark by class, returned as (image, label) or image alone."""

    def __init__(self, labelled: bool = True) -> None:
        generator = torch.Generator().manual_seed(0)
        self.y = torch.arange(24) % 2
        self.x = torch.rand(24, 3, 8, 8, generator=generator) * 0.5 + self.y.view(-1, 1, 1, 1) / 2
        self.labelled = labelled

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return (self.x[i], int(self.y[i])) if self.labelled else self.x[i]


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )


def test_own_dataset_and_backbone_train_and_return_metrics(tmp_path):
    net = small_cnn()
    result = contrastkit.fit(
        Squares(), backbone=net, steps=3, batch_size=8, out=str(tmp_path / "r"), **SMALL
    )
    assert isinstance(result.method, SimCLR) and result.method.backbone is net
    assert net.feature_dim == 6  # found by the dummy forward pass
    assert result.run_dir == tmp_path / "r"
    assert result.metrics == json.loads((result.run_dir / "summary.json").read_text())
    assert result.metrics["steps"] == 3 and result.metrics["data"] == "python:Squares"
    trained = result.metrics["eval"]["trained"]
    assert 0.0 <= trained["knn"] <= 1.0 and 0.0 <= trained["linear_probe"] <= 1.0
    assert result.metrics["eval"]["skipped"] == {}
    assert result.method.embed(torch.zeros(2, 3, 8, 8)).shape == (2, 6)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["backbone"] == "python:Sequential" and config["eval"] is False


def test_tensors_with_labels_and_the_default_batch(tmp_path):
    x, y = torch.randn(20, 5, generator=torch.Generator().manual_seed(0)), torch.arange(20) % 4
    result = contrastkit.fit((x, y), steps=2, eval=False, out=str(tmp_path / "r"), **SMALL)
    assert result.metrics["batch_size"] == 20  # the whole data: fewer samples than 256
    assert result.metrics["data"] == "python:Tensor" and result.metrics["backbone"] == "mlp"
    assert "eval" not in result.metrics
    assert result.method.embed(x).shape[0] == 20 and not result.method.training


def test_unlabelled_data_skips_label_metrics_with_a_note(tmp_path):
    result = contrastkit.fit(
        Squares(labelled=False),
        backbone=small_cnn(),
        steps=2,
        batch_size=8,
        out=str(tmp_path / "r"),
        **SMALL,
    )
    ev = result.metrics["eval"]
    assert set(ev["skipped"]) == {"knn", "linear_probe", "separation"}
    assert "no labels" in ev["skipped"]["knn"]
    assert "knn" not in ev["trained"] and "effective_rank" in ev["trained"]


def test_a_dataset_name_with_the_users_backbone(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU())
    result = contrastkit.fit("toy", backbone=net, steps=2, out=str(tmp_path / "r"), **SMALL)
    assert result.metrics["data"] == "toy" and net.feature_dim == 4
    ev = result.metrics["eval"]
    assert "knn" in ev["trained"]
    # the initial network is a copy taken before training, not the trained module again
    assert ev["random_init"]["uniformity"] != ev["trained"]["uniformity"]


def test_a_dataset_name_and_a_backbone_name_train_as_the_cli_does(tmp_path):
    result = contrastkit.fit("toy", steps=2, eval=False, out=str(tmp_path / "r"), **SMALL)
    assert (result.metrics["data"], result.metrics["backbone"]) == ("toy", "mlp")
    assert resume(result.run_dir) == result.run_dir  # a named run resumes as usual


def test_eval_data_is_the_held_out_split(tmp_path):
    result = contrastkit.fit(
        Squares(),
        eval_data=Squares(labelled=False),  # its missing labels show that it was used
        backbone=small_cnn(),
        steps=1,
        batch_size=8,
        out=str(tmp_path / "r"),
        **SMALL,
    )
    assert "no labels" in result.metrics["eval"]["skipped"]["knn"]
    with pytest.raises(ValueError, match=r"eval_data samples have shape \(3, 4, 4\); data's"):
        contrastkit.fit(Squares(), eval_data=torch.zeros(2, 3, 4, 4), out=str(tmp_path / "b"))
    assert not (tmp_path / "b").exists()


def test_pil_images_and_uint8_tensors_become_float_images():
    pictures = [Image.new("RGB", (6, 5), (255, 0, 0)), Image.new("RGBA", (6, 5))]
    dataset = as_dataset(pictures)
    x, y = dataset[0]
    assert (dataset.kind, dataset.input_shape, y) == ("images", (3, 5, 6), -1)
    assert x.dtype == torch.float32 and x[0].max() == 1.0 and x[1].max() == 0.0
    assert dataset[1][0].shape == (3, 5, 6)  # RGBA converted to RGB
    images = as_dataset(torch.full((4, 1, 3, 3), 255, dtype=torch.uint8))
    assert images[0][0].max() == 1.0 and images.kind == "images"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (42, r"^data must be a dataset name .* got a int"),
        (["a", "b"], r"^data\[0\] is a str; expected"),
        ([(torch.zeros(3, 4, 4), 1, 2)], r"^data\[0\] is a tuple of 3"),
        ([(torch.zeros(3, 4, 4), 0.5)], r"^data\[0\] label is a float"),
        ([torch.zeros(4, 4)], r"^data\[0\] has shape \(4, 4\).*unsqueeze"),
        ((torch.zeros(4, 3, 2),), r"^data x has shape \(4, 3, 2\)"),
        ((torch.zeros(4, 2), torch.zeros(3, dtype=torch.long)), r"^data y must hold \(4,\)"),
        ([], r"^data has no samples"),
    ],
)
def test_bad_data_is_one_value_error_naming_data(data, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        contrastkit.fit(data, steps=1, out=str(tmp_path / "r"), **SMALL)
    assert not (tmp_path / "r").exists()


def test_samples_of_different_shapes_are_refused_when_read():
    dataset = as_dataset([torch.zeros(3, 4, 4), torch.zeros(3, 5, 5)])
    with pytest.raises(ValueError, match=r"data\[1\] has shape \(3, 5, 5\) but data\[0\] has"):
        dataset[1]


@pytest.mark.parametrize(
    ("backbone", "message"),
    [
        (42, r"^backbone must be a name .* or a torch.nn.Module, got a int"),
        (nn.Linear(7, 3), r"^backbone fails on a batch of shape \(2, 3, 8, 8\)"),
        (nn.Conv2d(3, 2, 3), r"^backbone must map \(B, 3, 8, 8\) to \(B, F\).* \(2, 2, 6, 6\)"),
    ],
)
def test_bad_backbone_is_one_value_error_naming_backbone(backbone, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        contrastkit.fit(Squares(), backbone=backbone, steps=1, out=str(tmp_path / "r"), **SMALL)
    assert not (tmp_path / "r").exists()


def test_the_dummy_forward_leaves_rng_and_mode_alone():
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(12, 3)).train()
    torch.manual_seed(1)
    expected = torch.rand(1)
    torch.manual_seed(1)
    as_backbone(net, (3, 2, 2))
    assert torch.equal(torch.rand(1), expected) and net.training and net.feature_dim == 3
    net.feature_dim = 5
    with pytest.raises(ValueError, match=r"backbone.feature_dim is 5 but its output has 3"):
        as_backbone(net, (3, 2, 2))


def test_settings_are_checked_by_name(tmp_path):
    with pytest.raises(ValueError, match=r"fit: unknown key\(s\) \['stpes'\]"):
        contrastkit.fit(Squares(), stpes=3)
    with pytest.raises(ValueError, match=r"^eval_every: the online kNN needs a dataset name"):
        contrastkit.fit(Squares(), eval_every=2)
    with pytest.raises(ValueError, match=r"eval_data goes with the user's own data"):
        contrastkit.fit("toy", eval_data=Squares())


def test_a_run_on_python_objects_cannot_be_resumed_by_name(tmp_path):
    result = contrastkit.fit(
        Squares(), steps=1, batch_size=8, eval=False, out=str(tmp_path / "r"), **SMALL
    )
    with pytest.raises(ValueError, match=r"its data were Python objects given to contrastkit.fit"):
        resume(result.run_dir)

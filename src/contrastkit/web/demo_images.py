"""The pictures of panel 1: photographs shipped with scikit-image plus a few ``shapes`` scenes.

The same small set is what the panel shows and what its encoder is trained on, as one dataset
following the ``contrastkit.data`` contract (the label of a picture is its index, used only to
tell positive from negative pairs). Nothing is downloaded: scikit-image ships these photographs.

Letters used in shapes: P the side of a stored picture.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from contrastkit.data.shapes import build_shapes

# skimage.data function -> what the page calls it
PHOTOS: dict[str, str] = {
    "coffee": "coffee cup",
    "chelsea": "cat",
    "astronaut": "astronaut",
    "rocket": "rocket",
    "camera": "cameraman",
    "immunohistochemistry": "tissue sample",
    "hubble_deep_field": "Hubble deep field",
    "retina": "retina",
}
SHAPES_SEED = 7


def _square(image: Tensor, side: int) -> Tensor:
    """Center-crop (C, H, W) to a square and resize it to (C, side, side)."""
    _, h, w = image.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    image = image[:, top : top + s, left : left + s]
    out = F.interpolate(image[None], size=(side, side), mode="bilinear", antialias=True)
    return out[0].clamp(0, 1)


def load_photo(name: str, side: int) -> Tensor:
    """Load one scikit-image photograph as a float RGB image (3, side, side) in [0, 1]."""
    import skimage.data

    if name not in PHOTOS:
        raise ValueError(f"unknown photo {name!r}; expected one of: {', '.join(PHOTOS)}")
    array = getattr(skimage.data, name)()  # (H, W) or (H, W, 3), uint8
    image = torch.from_numpy(array).float() / 255.0
    image = image[None].expand(3, -1, -1) if image.ndim == 2 else image[..., :3].permute(2, 0, 1)
    return _square(image.contiguous(), side)


def shapes_scenes(count: int, side: int, seed: int = SHAPES_SEED) -> list[tuple[str, Tensor]]:
    """Return ``count`` scenes of the ``shapes`` dataset as (caption, (3, side, side)) pairs."""
    dataset = build_shapes(train=True, seed=seed, size=64, n=count)
    captions = getattr(dataset, "captions", None)
    scenes = []
    for i in range(count):
        x, y = dataset[i]
        name = captions[i] if captions else f"shapes scene {i + 1}"
        scenes.append((name, _square(x.float(), side)))
    return scenes


class DemoImages(Dataset):
    """The demo's pictures as a dataset: ``ds[i] -> (x (3, P, P) in [0, 1], i)``.

    Args:
        side: P, the side every picture is resized to.
        num_shapes: how many ``shapes`` scenes join the photographs.
    """

    kind = "images"
    name = "demo-images"

    def __init__(self, side: int = 128, num_shapes: int = 8) -> None:
        if side < 8 or num_shapes < 0:
            raise ValueError(f"need side >= 8 and num_shapes >= 0, got {side} and {num_shapes}")
        pictures = [(title, load_photo(name, side)) for name, title in PHOTOS.items()]
        pictures += shapes_scenes(num_shapes, side)
        self.class_names = [title for title, _ in pictures]
        self.images = torch.stack([image for _, image in pictures])  # (N, 3, P, P)
        self.labels = torch.arange(len(pictures))
        self.input_shape = tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.images[i], int(self.labels[i])

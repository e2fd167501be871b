import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from contrastkit.data import build_dataset
from contrastkit.data.shapes import (
    COLORS,
    DEFAULT_HOLDOUT,
    SHAPES,
    TEST_SIZE,
    TRAIN_SIZE,
    _generate,
    build_shapes,
    caption,
)


def test_same_seed_same_scenes_and_splits_differ():
    a = build_shapes(train=True, seed=3, n=64)
    _generate.cache_clear()  # really generate again, not a cached copy
    b = build_shapes(train=True, seed=3, n=64)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert a.captions == b.captions
    assert not torch.equal(a.images, build_shapes(train=True, seed=4, n=64).images)
    assert not torch.equal(a.images, build_shapes(train=False, seed=3, n=64).images)


def test_scene_depends_only_on_seed_and_index():
    small = build_shapes(train=True, seed=1, n=10)
    large = build_shapes(train=True, seed=1, n=1100)  # crosses a render chunk
    assert torch.equal(small.images, large.images[:10])
    assert torch.equal(small.masks, large.masks[:10])


def test_dataset_contract_and_sizes():
    ds = build_dataset("shapes")  # the default split sizes: 4,000 train, 1,000 test
    assert len(ds) == TRAIN_SIZE == 4000 and TEST_SIZE == 1000
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() <= x.max() <= 1
    assert y == int(ds.labels[0]) and ds.kind == "images" and ds.input_shape == (3, 32, 32)
    assert ds.class_names == list(SHAPES) and ds.color_names == list(COLORS)
    assert ds.masks.shape == (TRAIN_SIZE, 32, 32) and ds.masks.dtype == torch.bool
    assert set(ds.labels.tolist()) == set(range(5))
    big = build_shapes(train=False, size=64, n=20)
    assert big.images.shape == (20, 3, 64, 64) and big.masks.shape == (20, 64, 64)


@pytest.mark.parametrize("size", [32, 64])
def test_masks_cover_exactly_the_flat_coloured_object(size):
    ds = build_shapes(train=True, seed=0, n=200, size=size)
    palette = torch.tensor(list(COLORS.values())) * 255
    for i in range(len(ds)):
        mask = ds.masks[i]
        assert mask.sum() >= 0.02 * size * size  # a visible object
        pixels = ds.images[i][:, mask].T.float()  # (M, 3)
        assert (pixels == pixels[0]).all()  # one flat colour under the mask
        # the named colour, up to the +-0.06 per-channel shade jitter
        assert (pixels[0] - palette[ds.colors[i]]).abs().max() <= 0.06 * 255 + 1
        # and no background pixel on the object's bounding box has exactly that colour
        rows, cols = mask.nonzero(as_tuple=True)
        box = (slice(None), slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
        outside = ~mask[box[1:]]
        rest = ds.images[i][box][:, outside].T.float()
        assert not (rest == pixels[0]).all(dim=1).any()


def test_captions_name_colour_and_shape():
    ds = build_shapes(train=False, n=100)
    for c, s, text in zip(ds.colors, ds.labels, ds.captions, strict=True):
        assert text == caption(ds.color_names[c], ds.class_names[s])
    assert caption("red", "star") == "a red star"
    assert caption("orange", "cross") == "an orange cross"


def test_holdout_pairs_never_appear_in_training():
    train = build_shapes(train=True, n=800)
    test = build_shapes(train=False, n=400)
    held = set(DEFAULT_HOLDOUT)
    seen_pairs = {
        (train.color_names[c], train.class_names[s])
        for c, s in zip(train.colors, train.labels, strict=True)
    }
    assert not seen_pairs & held
    assert len(seen_pairs) == 30 - len(held)
    test_pairs = [
        (test.color_names[c], test.class_names[s])
        for c, s in zip(test.colors, test.labels, strict=True)
    ]
    assert {p for p in test_pairs if p in held} == held
    assert test.unseen.tolist() == [p in held for p in test_pairs]
    assert not train.unseen.any()
    assert all(caption(*p) not in train.captions for p in held)
    # every colour and every shape is held out at least once
    assert {c for c, _ in held} == set(COLORS) and {s for _, s in held} == set(SHAPES)
    none = build_shapes(train=True, n=600, holdout=())
    assert (
        len({(c, s) for c, s in zip(none.colors.tolist(), none.labels.tolist(), strict=True)}) == 30
    )


def test_raw_pixel_knn_is_poor_on_shape_but_not_on_colour():
    train, test = build_shapes(train=True, n=1500), build_shapes(train=False, n=400)
    x_train = train.images.flatten(1).float().numpy() / 255
    x_test = test.images.flatten(1).float().numpy() / 255
    knn = KNeighborsClassifier(n_neighbors=20, metric="cosine")
    shape_acc = knn.fit(x_train, train.labels.numpy()).score(x_test, test.labels.numpy())
    color_acc = knn.fit(x_train, train.colors.numpy()).score(x_test, test.colors.numpy())
    assert shape_acc < 0.4  # chance is 0.2; measured about 0.29
    assert color_acc > 0.8  # the scenes are not noise: colour is easy from pixels


def test_bad_arguments():
    with pytest.raises(ValueError, match="takes no path"):
        build_dataset("shapes:/tmp")
    with pytest.raises(ValueError, match="takes no path"):
        build_shapes("/tmp")
    with pytest.raises(ValueError, match="size must be >= 16"):
        build_shapes(size=8)
    with pytest.raises(ValueError, match="n must be >= 1"):
        build_shapes(n=0)
    with pytest.raises(ValueError, match="'pink'"):
        build_shapes(holdout=[("pink", "star")])
    with pytest.raises(ValueError, match="every colour of 'star'"):
        build_shapes(holdout=[(c, "star") for c in COLORS])


def test_backgrounds_differ_but_share_their_statistics():
    ds = build_shapes(train=True, n=500)
    background = ~ds.masks[:, None].expand_as(ds.images)  # (N, 3, S, S)
    pixels = ds.images.float() / 255
    assert not torch.equal(ds.images[0][background[0]][:50], ds.images[1][background[1]][:50])
    means = torch.stack([pixels[i][background[i]].mean() for i in range(len(ds))])
    assert abs(float(means.mean()) - 0.5) < 0.01 and float(means.std()) < 0.01  # all grey
    assert (
        float(pixels[background].min()) >= 0.2 - 1e-6
        and float(pixels[background].max()) <= 0.8 + 1e-6
    )
    assert 0.05 < ds.masks.float().mean() < 0.4

import pytest
import torch

from contrastkit.data import build_dataset
from contrastkit.training.batches import (
    ViewDataset,
    batch_indices,
    epoch_batches,
    epoch_order,
    mix_seed,
    step_batches,
    steps_per_epoch,
)
from contrastkit.transforms import build_batched_view_fn, build_view_fn
from contrastkit.transforms.batched import NUM_DRAWS


def test_order_is_a_fixed_permutation_per_seed_and_epoch():
    a = epoch_order(0, 3, 50)
    assert sorted(a.tolist()) == list(range(50))
    assert torch.equal(a, epoch_order(0, 3, 50))
    assert not torch.equal(a, epoch_order(0, 4, 50))
    assert not torch.equal(a, epoch_order(1, 3, 50))
    assert mix_seed(1, 2, 3) == mix_seed(1, 2, 3) != mix_seed(1, 3, 2)


def test_full_batches_only_and_rank_slices():
    assert steps_per_epoch(100, 16) == 6
    batches = batch_indices(0, 0, 100, 16)
    assert len(batches) == 6 and all(len(b) == 16 for b in batches)
    assert len({i for b in batches for i in b}) == 96
    r0 = batch_indices(0, 0, 100, 8, rank=0, world_size=2)
    r1 = batch_indices(0, 0, 100, 8, rank=1, world_size=2)
    assert [a + b for a, b in zip(r0, r1, strict=True)] == batches


def test_views_depend_only_on_seed_epoch_and_index():
    ds = build_dataset("toy")
    fn = build_view_fn("pair", ds)
    views = ViewDataset(ds, fn, seed=0, epoch=2)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    first = views[5]
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is left as it was
    views[7]
    again = views[5]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    other_epoch = ViewDataset(ds, fn, seed=0, epoch=3)[5]
    assert not torch.equal(first[0], other_epoch[0])


def test_resuming_mid_epoch_yields_the_remaining_batches():
    ds = build_dataset("toy")
    fn = build_view_fn("pair", ds)
    full = list(epoch_batches(ds, fn, seed=1, epoch=0, batch_size=16))
    tail = list(epoch_batches(ds, fn, seed=1, epoch=0, batch_size=16, start_batch=4))
    assert len(full) == 6 and len(tail) == 2
    assert full[0][0].shape == (16, 2) and len(full[0]) == 2
    for a, b in zip(full[4:], tail, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def _batched(**options):
    ds = build_dataset("shapes", train=False)  # 1,000 scenes, 32x32
    return ds, build_batched_view_fn("pair", ds, **options)


def test_batched_views_of_a_sample_ignore_its_batch_and_process():
    ds, fn = _batched()
    one = list(epoch_batches(ds, fn, seed=3, epoch=1, batch_size=16))
    r0 = list(epoch_batches(ds, fn, seed=3, epoch=1, batch_size=8, rank=0, world_size=2))
    r1 = list(epoch_batches(ds, fn, seed=3, epoch=1, batch_size=8, rank=1, world_size=2))
    assert len(one) == len(r0) == 62 and one[0][0].shape == (16, 3, 32, 32)
    for batch in (0, 61):  # 2 processes with 8 each see exactly the views of one with 16
        for v in range(2):
            joined = torch.cat([r0[batch][v], r1[batch][v]])
            torch.testing.assert_close(joined, one[batch][v], rtol=0, atol=1e-6)
    tail = list(epoch_batches(ds, fn, seed=3, epoch=1, batch_size=16, start_batch=60))
    assert all(torch.equal(a, b) for a, b in zip(one[60], tail[0], strict=True))
    other = next(epoch_batches(ds, fn, seed=3, epoch=2, batch_size=16))
    assert not torch.equal(other[0], one[0][0])


def test_batched_draws_fix_every_choice_and_leave_the_global_rng_alone():
    ds, fn = _batched()
    x = torch.stack([ds[i][0] for i in range(4)])
    u = torch.rand(4, fn.num_draws, generator=torch.Generator().manual_seed(0))
    state = torch.get_rng_state()
    first = fn(x, u)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(a, b) for a, b in zip(first, fn(x, u), strict=True))
    assert not torch.equal(first[0], first[1])  # each view has its own columns of u
    with pytest.raises(ValueError, match=rf"u must be \(B, {2 * NUM_DRAWS}\)"):
        fn(x, u[:, :NUM_DRAWS])


@pytest.mark.parametrize(
    ("recipe", "data", "options", "message"),
    [
        ("pair", "toy", {}, "no batched views for recipe 'pair' on dataset 'toy'"),
        ("image_text", "shapes", {}, "no batched views for recipe 'image_text'"),
        ("pair", "shapes", {"size": 48}, "32x32 is too small for crops of size 48x48"),
        ("multicrop", "shapes", {"local_size": 40}, "too small for crops of size 40x40"),
        ("pair", "shapes", {"n_local": 2}, r"view options \['n_local'\] do not fit 'pair'"),
        ("pair", "shapes", {"blur_p": 1.5}, r"blur_p must be a probability in \[0, 1\]"),
        ("asymmetric_pair", "shapes", {"blur_p": 0.3}, "fixes blur_p and solarize_p"),
    ],
)
def test_batched_views_bad_input(recipe, data, options, message):
    with pytest.raises(ValueError, match=message):
        build_batched_view_fn(recipe, build_dataset(data), **options)


def test_step_batches_run_across_epochs_and_resume_at_any_step():
    ds = build_dataset("toy")  # 100 points: 6 batches of 16 per epoch
    fn = build_view_fn("pair", ds)
    common = {"seed": 0, "total_steps": 14, "batch_size": 16}
    every = list(step_batches(ds, fn, start_step=0, **common))
    assert [b.step for b in every] == list(range(14))
    assert [b.epoch for b in every] == [0] * 6 + [1] * 6 + [2] * 2
    assert every[7].indices == batch_indices(0, 1, 100, 16)[1]
    first_of_epoch_1 = next(iter(epoch_batches(ds, fn, seed=0, epoch=1, batch_size=16)))
    assert all(torch.equal(a, b) for a, b in zip(every[6].views, first_of_epoch_1, strict=True))
    resumed = list(step_batches(ds, fn, start_step=9, **common))
    assert [b.step for b in resumed] == list(range(9, 14))
    for a, b in zip(resumed, every[9:], strict=True):
        assert a.indices == b.indices
        assert all(torch.equal(u, v) for u, v in zip(a.views, b.views, strict=True))

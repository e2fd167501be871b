"""SyncBatchNorm on one process is BatchNorm; conversion keeps the state.

Its multi-process exactness is tested in tests/distributed/.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastkit.training.sync_batchnorm import SyncBatchNorm, convert_sync_batch_norm


def model() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5)
    )
    net.append(nn.BatchNorm1d(5, momentum=None))
    return net


def test_conversion_replaces_every_batch_norm_and_keeps_state() -> None:
    net = model()
    with torch.no_grad():
        net[1].weight.uniform_(0.5, 1.5)
        net[1].running_mean.fill_(0.25)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    converted = convert_sync_batch_norm(net)
    assert converted is net
    assert isinstance(net[1], SyncBatchNorm) and isinstance(net[5], SyncBatchNorm)
    assert net[5].momentum is None
    assert converted.state_dict().keys() == state.keys()
    for key, value in converted.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_conversion_keeps_dtype_and_mode_of_a_lone_layer() -> None:
    bn = nn.BatchNorm1d(3).double().eval()
    converted = convert_sync_batch_norm(bn)
    assert isinstance(converted, SyncBatchNorm)
    assert converted.weight.dtype == torch.float64 and not converted.training


@pytest.mark.parametrize("training", [True, False])
def test_single_process_equals_batch_norm(training: bool) -> None:
    plain, synced = model(), convert_sync_batch_norm(model())
    plain.train(training)
    synced.train(training)
    x = torch.randn(6, 3, 6, 6)
    for _ in range(2):  # twice, so the running statistics are used and updated
        torch.testing.assert_close(synced(x), plain(x))
    torch.testing.assert_close(synced.state_dict(), plain.state_dict())


def test_bad_input_shape() -> None:
    with pytest.raises(ValueError, match=r"input must be \(N, C, \.\.\.\), got shape \(4,\)"):
        SyncBatchNorm(4)(torch.randn(4))

"""Mixed precision: only the networks' products follow it, and training loses nothing."""

import pytest
import torch

from sims.engine import MinibatchConfig, fit_minibatch
from sims.generators import make_task_pair
from sims.methods import make_members
from sims.models import precision
from sims.models.architectures import ScoreArchitecture
from sims.models.base import mlp
from sims.models.precision import networks_in, resolve
from sims.models.scores import SubspaceScore

BFLOAT16_RELATIVE_PRECISION = 2.0**-8


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bfloat16_exactly_where_the_device_has_it(native, monkeypatch):
    monkeypatch.setattr(precision, "native_bfloat16", lambda device: native)
    assert resolve("auto", "cpu") == ("bfloat16" if native else "float32")
    assert resolve("float32", "cpu") == "float32"
    assert resolve("bfloat16", "cpu") == "bfloat16"


def test_an_unknown_precision_is_refused_by_name():
    with pytest.raises(ValueError, match="precision 'float16': expected one of auto"):
        resolve("float16", "cpu")


def test_networks_multiply_in_bfloat16_only_inside_the_block():
    torch.manual_seed(0)
    network, x = mlp(6, 2, 64, layers=3), torch.randn(500, 6)
    exact = network(x)
    with networks_in("bfloat16"):
        rounded = network(x)
    assert rounded.dtype == torch.float32
    error = (rounded - exact).norm() / exact.norm()
    assert 0 < error < 8 * BFLOAT16_RELATIVE_PRECISION
    assert torch.equal(network(x), exact)


def test_the_exact_part_of_a_subspace_score_stays_float32():
    torch.manual_seed(0)
    data = torch.randn(400, 4) * torch.tensor([2.0, 1.5, 0.1, 0.1])
    model = SubspaceScore(d_x=4, d_h=2, data=data, hidden=32)
    x, tau = torch.randn(300, 4), torch.rand(300, 1)
    exact = model.predict_noise(x, None, tau)
    with networks_in("bfloat16"):
        rounded = model.predict_noise(x, None, tau)
    frame = model.embedding().detach()
    difference = rounded - exact
    off_frame = difference - difference @ frame @ frame.T
    assert (difference @ frame).abs().max() > 1e-4  # the network's part is rounded
    assert off_frame.abs().max() < 1e-6  # the Gaussian complement is not


def test_score_networks_trained_in_bfloat16_reach_the_float32_held_out_loss():
    pair = make_task_pair("gaussian_smooth", d_x=2, d_z=3, d_h=2, seed=0)
    members = make_members(pair, range(6), n_target=400, n_source=None)
    splits = [m.target.split(0.2, m.seed) for m in members]
    train, held_out = [s[0] for s in splits], [s[1] for s in splits]
    architecture = ScoreArchitecture(hidden=32, layers=2)
    config = MinibatchConfig(max_steps=300, eval_every=20, batch_size=128, patience=5)
    losses = {}
    for name in ("float32", "bfloat16"):
        models = []
        for member, data in zip(members, train, strict=True):
            torch.manual_seed(member.seed)
            models.append(architecture.build(pair, data, None))
        seeds = [m.seed for m in members]
        fitted, report = fit_minibatch(models, train, held_out, seeds, config, precision=name)
        assert all(p.dtype == torch.float32 for p in fitted[0].parameters())
        losses[name] = torch.tensor(report.best_loss)
    relative = (losses["bfloat16"] - losses["float32"]).abs() / losses["float32"]
    assert relative.max() < BFLOAT16_RELATIVE_PRECISION, relative

"""The written-out spline log-density agrees with zuko's, and with the spline's own calculus."""

import pytest
import torch
import zuko

from sims.models.base import run_layers
from sims.models.precision import networks_in
from sims.models.splines import rational_quadratic, spline_log_prob

SHAPES = [
    (2, 2),
    (2, 0),
    (3, 4),
    (1, 3),
    (1, 0),
]  # (features, context); one feature is element-wise


def flow_and_points(features: int, context: int, seed: int = 0):
    """A float64 NSF with random weights (its element-wise parameters too), and 400 points,
    a quarter of them outside the splines' [-5, 5]."""
    torch.manual_seed(seed)
    flow = zuko.flows.NSF(features, context, bins=8, transforms=3, hidden_features=[32, 32])
    flow = flow.double()
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.normal_(0, 0.5)
    x = torch.randn(400, features, dtype=torch.float64) * 4
    c = torch.randn(400, context, dtype=torch.float64) if context else None
    return flow, x, c


@pytest.mark.parametrize("features, context", SHAPES)
def test_log_prob_is_zukos(features, context):
    flow, x, c = flow_and_points(features, context)
    assert (x.abs() > 5).any()
    expected = flow(c).log_prob(x)
    # two operation orders in float64: agreement to ~1e-11 of the log-densities' scale
    # (rounding leaves ~1e-14; a wrong formula moves them by far more)
    tolerance = 1e-11 * expected.abs().max().item()
    torch.testing.assert_close(spline_log_prob(flow, x, c), expected, rtol=0, atol=tolerance)


@pytest.mark.parametrize("features, context", SHAPES)
def test_gradients_are_zukos(features, context):
    flow, x, c = flow_and_points(features, context, seed=1)
    parameters = list(flow.parameters())
    ours = torch.autograd.grad(spline_log_prob(flow, x, c).sum(), parameters)
    theirs = torch.autograd.grad(flow(c).log_prob(x).sum(), parameters)
    for a, b in zip(ours, theirs, strict=True):
        # each gradient sums 400 points' terms computed in two operation orders: it agrees to
        # the rounding of its largest terms (~1e-12 of the tensor's scale), not entry by entry
        # where terms cancel; a wrong derivative is off by far more than 1e-9 of the scale
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9 * b.abs().max().item())


def test_spline_is_monotone_fixes_its_ends_and_its_log_derivative_is_autograds():
    torch.manual_seed(2)
    x = torch.linspace(-7, 7, 2001, dtype=torch.float64).requires_grad_()
    parameters = torch.randn(1, 1, 23, dtype=torch.float64).expand(2001, 1, 23)
    y, log_derivative = rational_quadratic(x[:, None], parameters, bound=5.0, slope=1e-3)
    (derivative,) = torch.autograd.grad(y.sum(), x)
    assert torch.allclose(log_derivative[:, 0], derivative.log(), atol=1e-10)
    assert (y[1:, 0] > y[:-1, 0]).all()
    outside = x.abs() > 5
    assert torch.equal(y[outside, 0], x[outside]) and (log_derivative[outside] == 0).all()
    ends = torch.tensor([[-5.0], [5.0]], dtype=torch.float64)
    y_ends, _ = rational_quadratic(ends, parameters[:2], bound=5.0, slope=1e-3)
    assert torch.allclose(y_ends, ends, atol=1e-12)


@pytest.mark.parametrize("features, context", SHAPES)
def test_conditioners_multiply_in_bfloat16(features, context):
    """In a bfloat16 block the log-density moves by bfloat16 rounding only, for masked
    (several features) and plain (one feature, with context) conditioners alike."""
    torch.manual_seed(3)
    flow = zuko.flows.NSF(features, context, bins=8, transforms=3, hidden_features=[32, 32])
    x = torch.randn(400, features)
    c = torch.randn(400, context) if context else None
    exact = spline_log_prob(flow, x, c)
    with networks_in("bfloat16"):
        rounded = spline_log_prob(flow, x, c)
    if features == 1 and not context:
        assert torch.equal(rounded, exact)  # no network: the parameters are the flow's own
    else:
        assert not torch.equal(rounded, exact)
        # log-densities of a few nats, each conditioner output rounded to 2^-8 relative
        assert torch.allclose(rounded, exact, rtol=0, atol=0.05)


def test_masked_conditioners_keep_their_masks_in_bfloat16():
    """The first feature's spline parameters ignore x in the bfloat16 path too."""
    torch.manual_seed(3)
    flow = zuko.flows.NSF(3, 2, bins=8, transforms=3, hidden_features=[32, 32])
    x, c = torch.randn(400, 3), torch.randn(400, 2)
    first = flow.transform.transforms[0]
    with networks_in("bfloat16"):
        parameters = [
            run_layers(first.hyper, torch.cat([v, c], -1)).unflatten(-1, (3, -1))[:, 0]
            for v in (x, x + 1.0)
        ]
    assert torch.equal(*parameters)


def test_flows_of_other_transforms_are_refused():
    flow = zuko.flows.MAF(2, 0, transforms=1)
    with pytest.raises(TypeError, match="rational-quadratic"):
        spline_log_prob(flow, torch.zeros(1, 2))

"""The ensemble engine: isolation of members, best weights, failures, full-batch fits."""

from dataclasses import replace

import pytest
import torch

from sims import engine
from sims.data import Dataset
from sims.engine import MinibatchConfig, fit_full_batch, fit_minibatch
from sims.generators import make_task_pair
from sims.methods import Training, make_members, scratch
from sims.models import stacked
from sims.models.architectures import (
    FlowArchitecture,
    LinearGaussianArchitecture,
    ScoreArchitecture,
)
from sims.models.base import is_embedding_parameter

CONFIG = MinibatchConfig(max_steps=120, eval_every=20, batch_size=64, patience=3)
ARCHITECTURE = FlowArchitecture(hidden=16, transforms=2)
ARCHITECTURES = {"flow": ARCHITECTURE, "diffusion": ScoreArchitecture(hidden=16, layers=2)}


def flow_problem(n_members, sizes=None, architecture=ARCHITECTURE):
    pair = make_task_pair("gaussian_smooth", d_x=2, d_z=3, d_h=2, seed=0)
    members = make_members(pair, range(n_members), n_target=200, n_source=None)
    train, held_out, models = [], [], []
    for i, member in enumerate(members):
        data = member.target
        if sizes is not None:
            data = Dataset(data.x[: sizes[i]], data.z[: sizes[i]])
        t, h = data.split(0.2, member.seed)
        train.append(t)
        held_out.append(h)
        torch.manual_seed(member.seed)
        models.append(architecture.build(pair, t, None))
    return models, train, held_out, [m.seed for m in members]


def max_difference(a, b):
    return max(
        (x.double() - y.double()).abs().max().item()
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize("model", sorted(ARCHITECTURES))
def test_a_member_alone_and_in_an_ensemble_of_eight_agree(model):
    """Members 4 and 6 hold out 11 and 21 rows, whose noise (8 draws of 3 features a row)
    ends in an incomplete block of 16 normals, unlike the longest member's."""
    sizes = [200, 120, 80, 200, 55, 150, 105, 90]
    models, train, held_out, seeds = flow_problem(8, sizes, ARCHITECTURES[model])
    together, report = fit_minibatch(models, train, held_out, seeds, CONFIG)
    for i in (0, 4, 6):
        alone, alone_report = fit_minibatch(
            [models[i]], [train[i]], [held_out[i]], [seeds[i]], CONFIG
        )
        assert alone_report.best_loss[0] == pytest.approx(report.best_loss[i], rel=1e-5)
        assert alone_report.best_step[0] == report.best_step[i]
        assert max_difference(alone[0], together[i]) < 1e-5


def head_only(name):
    return not is_embedding_parameter(name)


@pytest.mark.parametrize("trainable", [lambda name: True, head_only], ids=["all", "head_only"])
def test_members_keep_their_best_weights(trainable):
    """With every parameter trained, and with the head trained over a frozen embedding
    (applied once to each row): each member's kept loss is its whole model's."""
    models, train, held_out, seeds = flow_problem(3)
    fitted, report = fit_minibatch(models, train, held_out, seeds, CONFIG, trainable=trainable)
    for model, data, loss in zip(fitted, held_out, report.best_loss, strict=True):
        with torch.no_grad():
            recomputed = -model.log_prob(data.x.float(), data.z.float()).mean().item()
        assert recomputed == pytest.approx(loss, rel=1e-4)
    assert all(step > 0 for step in report.best_step)


@pytest.mark.parametrize("model", sorted(ARCHITECTURES))
def test_conditions_embedded_once_give_each_members_own_losses(model, monkeypatch):
    """Each member has its own embedding (a network of its own seed); its losses on rows
    embedded once, 7 rows of all members at a time, are those of its whole model."""
    models, train, _, _ = flow_problem(3, architecture=ARCHITECTURES[model])
    monkeypatch.setattr(stacked, "EMBEDDED_ROWS", 7)
    stack = engine._Stack(models, head_only, "cpu")
    x, z, weights = stack.pad(train)
    noise = torch.randn(*x.shape[:2], stack.base.noise_features)
    whole = stack.losses(x, z, weights, noise)
    conditions = stack.embedded(z)
    assert conditions.shape == (*z.shape[:2], 2)
    on_conditions = stack.on_conditions().losses(x, conditions, weights, noise)
    torch.testing.assert_close(on_conditions, whole, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stack.losses(x, z, weights, noise), whole)  # stack left whole


def test_a_failing_member_is_reported_and_leaves_the_others_alone():
    models, train, held_out, seeds = flow_problem(3)
    broken = list(held_out)
    broken[1] = Dataset(torch.full_like(held_out[1].x, float("nan")), held_out[1].z)
    fitted, report = fit_minibatch(models, train, broken, seeds, CONFIG)
    clean, clean_report = fit_minibatch(models, train, held_out, seeds, CONFIG)
    assert report.failure[1] is not None and report.failure[0] is None
    assert max_difference(fitted[0], clean[0]) < 1e-5


@pytest.mark.parametrize("model", sorted(ARCHITECTURES))
def test_frozen_parameters_are_bit_identical(model):
    models, train, held_out, seeds = flow_problem(2, architecture=ARCHITECTURES[model])
    before = [dict(m.embedding.state_dict()) for m in models]
    fitted, _ = fit_minibatch(models, train, held_out, seeds, CONFIG, trainable=head_only)
    for model, state in zip(fitted, before, strict=True):
        for name, value in model.embedding.state_dict().items():
            assert torch.equal(value, state[name])


def test_full_batch_fit_reaches_the_closed_form_maximum_likelihood():
    from sims.models.linear_gaussian import fit_reduced_rank

    pair = make_task_pair("linear_gaussian", d_x=3, d_z=5, d_h=2, seed=1)
    members = make_members(pair, range(4), n_target=500, n_source=None)
    fitted = scratch(members, Training(LinearGaussianArchitecture()))
    for f, member in zip(fitted, members, strict=True):
        closed_form, _ = fit_reduced_rank(member.target.x, member.target.z, rank=2)
        trained = f.model.conditional()
        torch.testing.assert_close(
            trained.coefficients, closed_form.coefficients, atol=1e-6, rtol=0
        )
        torch.testing.assert_close(trained.covariance, closed_form.covariance, atol=1e-6, rtol=0)
        assert f.n_train == 500


def test_full_batch_members_agree_with_a_lone_fit():
    pair = make_task_pair("linear_gaussian", d_x=2, d_z=4, d_h=1, seed=2)
    members = make_members(pair, range(5), n_target=300, n_source=None)
    training = Training(LinearGaussianArchitecture())
    together = scratch(members, training)
    alone = scratch(members[3:4], training)
    a, b = alone[0].model.conditional(), together[3].model.conditional()
    torch.testing.assert_close(a.coefficients, b.coefficients, atol=1e-7, rtol=0)


@pytest.mark.parametrize("model", sorted(ARCHITECTURES))
def test_held_out_losses_in_groups_of_members_change_nothing(model, monkeypatch):
    """Held-out losses over at most 100 padded rows per call (groups of 2 members of 40
    held-out rows, 320 for the score networks' 8 noise draws: one member per call) give
    the fit of one call: the same losses, steps and weights, bit for bit."""
    models, train, held_out, seeds = flow_problem(5, None, ARCHITECTURES[model])
    whole, whole_report = fit_minibatch(models, train, held_out, seeds, CONFIG)
    monkeypatch.setattr(engine, "HELD_OUT_ROWS", 100)
    grouped, grouped_report = fit_minibatch(models, train, held_out, seeds, CONFIG)
    assert grouped_report == whole_report
    assert all(max_difference(a, b) == 0 for a, b in zip(whole, grouped, strict=True))


def test_full_batch_fits_in_row_bounded_groups_agree_with_one_fit(monkeypatch):
    """Members of three sizes: with groups of at most 700 padded rows they are fitted as
    [100, 100], [300, 300], [300] and [600]; each fit is the one of the whole ensemble."""
    pair = make_task_pair("linear_gaussian", d_x=2, d_z=4, d_h=1, seed=2)
    members = [
        member
        for n, seed in ((600, 0), (100, 1), (300, 2), (100, 3), (300, 4), (300, 5))
        for member in make_members(pair, [seed], n_target=n, n_source=None)
    ]
    training = Training(LinearGaussianArchitecture())
    together = scratch(members, training)
    assert engine._row_bounded_groups([100, 100, 300, 300, 300, 600], 700) == [
        [0, 1],
        [2, 3],
        [4],
        [5],
    ]
    monkeypatch.setattr(engine, "FULL_BATCH_ROWS", 700)
    grouped = scratch(members, training)
    for a, b in zip(together, grouped, strict=True):
        fit_a, fit_b = a.model.conditional(), b.model.conditional()
        torch.testing.assert_close(fit_a.coefficients, fit_b.coefficients, atol=1e-7, rtol=0)
        torch.testing.assert_close(fit_a.covariance, fit_b.covariance, atol=1e-7, rtol=0)
        assert a.n_train == b.n_train


def test_an_ensemble_needs_one_architecture():
    models, train, held_out, seeds = flow_problem(1)
    other = LinearGaussianArchitecture().build(
        make_task_pair("linear_gaussian", d_z=3), train[0], None
    )
    with pytest.raises(ValueError, match="one architecture"):
        fit_full_batch([models[0], other], [train[0], train[0]])


def test_full_batch_refuses_a_loss_with_noise():
    models, train, _, _ = flow_problem(1, architecture=ARCHITECTURES["diffusion"])
    with pytest.raises(ValueError, match="noise"):
        fit_full_batch(models, train)


def test_the_linear_gaussian_loss_from_moments_is_the_mean_negative_log_likelihood():
    """The full-batch loss, from the rows' weighted second moments, equals the weighted mean
    of -log_prob (padded rows of weight 0 included), and so does its gradient."""
    from sims.models.linear_gaussian import LinearGaussianModel

    torch.manual_seed(0)
    model = LinearGaussianModel(4, 8, 2)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.3)
    x, z = torch.randn(500, 4, dtype=torch.float64), torch.randn(500, 8, dtype=torch.float64)
    weight = torch.rand(500, dtype=torch.float64)
    weight[400:] = 0
    moments = model(x, z, weight, None)
    direct = -(model.log_prob(x, z) * weight).sum() / weight.sum()
    assert moments.item() == pytest.approx(direct.item(), rel=1e-12)
    for a, b in zip(
        torch.autograd.grad(moments, list(model.parameters())),
        torch.autograd.grad(direct, list(model.parameters())),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_the_cosine_schedule_falls_from_the_step_size_to_zero():
    config = MinibatchConfig(learning_rate=0.01, max_steps=100, schedule="cosine")
    sizes = [config.step_size(s) for s in (0, 50, 100)]
    assert sizes == pytest.approx([0.01, 0.005, 0.0], abs=1e-12)
    assert MinibatchConfig(learning_rate=0.01).step_size(99) == 0.01
    with pytest.raises(ValueError, match="schedule"):
        MinibatchConfig(schedule="linear")


def test_the_schedule_sets_every_step_of_members_alone_and_in_an_ensemble():
    """The first step is the constant schedule's; later ones are smaller, so the weights
    differ; a member that runs on after others stopped keeps its schedule."""
    models, train, held_out, seeds = flow_problem(4, [200, 60, 80, 200])
    cosine = replace(CONFIG, schedule="cosine")
    one = {"max_steps": 1, "eval_every": 1}
    first_constant, _ = fit_minibatch(models, train, held_out, seeds, replace(CONFIG, **one))
    first_cosine, _ = fit_minibatch(models, train, held_out, seeds, replace(cosine, **one))
    assert max_difference(first_constant[0], first_cosine[0]) < 1e-7
    constant, _ = fit_minibatch(models, train, held_out, seeds, CONFIG)
    together, report = fit_minibatch(models, train, held_out, seeds, cosine)
    assert max_difference(constant[0], together[0]) > 1e-4
    alone, alone_report = fit_minibatch([models[3]], [train[3]], [held_out[3]], [3], cosine)
    assert alone_report.best_step[0] == report.best_step[3]
    assert max_difference(alone[0], together[3]) < 1e-5

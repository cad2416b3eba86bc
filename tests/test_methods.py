"""The five methods: every family, what each trains, and the parametric calibration."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import SMALL_DIMS

from sims.data import Dataset
from sims.engine import MinibatchConfig
from sims.evaluation import EvaluationSizes, evaluate
from sims.generators import families, make_task_pair
from sims.methods import METHODS, Training, finetune, make_members, pretrain, transfer
from sims.models.architectures import (
    ARCHITECTURES,
    FlowArchitecture,
    LinearGaussianArchitecture,
    ScoreArchitecture,
    supports,
)
from sims.models.linear_gaussian import fit_given_embedding, fit_reduced_rank
from theory.parametric import k_oracle, k_scratch

TINY_CONFIG = MinibatchConfig(max_steps=40, eval_every=20, batch_size=64)
TINY = Training(FlowArchitecture(hidden=16, transforms=2), TINY_CONFIG)
TINY_SCORES = Training(ScoreArchitecture(hidden=16, layers=2), TINY_CONFIG)


@pytest.mark.parametrize("family", families())
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_on_every_family(family, method):
    pair = make_task_pair(family, seed=0, **SMALL_DIMS[family])
    members = make_members(pair, [0, 1], n_target=100, n_source=200)
    fitted = METHODS[method].fit(members, TINY)
    for f, member in zip(fitted, members, strict=True):
        row = evaluate(f, member, EvaluationSizes(n_kl=500))
        assert f.failure is None and math.isfinite(row["kl"]) and row["kl_se"] > 0
        assert f.n_train == 80


@pytest.mark.parametrize("held_out_max, n_train", [(2048, 80), (7, 93)])
def test_a_member_holds_out_a_share_of_its_samples_up_to_a_limit(held_out_max, n_train):
    pair = make_task_pair("gaussian_smooth", seed=0, **SMALL_DIMS["gaussian_smooth"])
    members = make_members(pair, [0, 1], n_target=100, n_source=200)
    config = dataclasses.replace(TINY_CONFIG, held_out_max=held_out_max)
    for method in ("scratch", "transfer"):
        fitted = METHODS[method].fit(members, Training(TINY.architecture, config))
        assert [f.n_train for f in fitted] == [n_train, n_train]


def embedding_state(model):
    return {k: v.clone() for k, v in model.embedding.state_dict().items()}


@pytest.mark.parametrize("training", [TINY, TINY_SCORES], ids=["flow", "diffusion"])
def test_transfer_freezes_the_embedding_and_finetune_moves_it(training):
    pair = make_task_pair("gaussian_smooth", d_x=2, d_z=3, d_h=2, seed=0)
    members = make_members(pair, [0, 1], n_target=100, n_source=300)
    pretrained = pretrain(members, training)
    before = [embedding_state(p.model) for p in pretrained]
    transferred = transfer(members, training, pretrained)
    finetuned = finetune(members, training, pretrained)
    for state, t, f in zip(before, transferred, finetuned, strict=True):
        for name, value in state.items():
            assert torch.equal(t.model.embedding.state_dict()[name], value)
        moved = [not torch.equal(f.model.embedding.state_dict()[n], v) for n, v in state.items()]
        assert any(moved)
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            before[0].values(), embedding_state(pretrained[0].model).values(), strict=True
        )
    )


def linear_setup(n_source=None):
    pair = make_task_pair("linear_gaussian", d_x=3, d_z=5, d_h=2, seed=0, signal_source=0.5)
    return pair, make_members(pair, range(40), n_target=1000, n_source=n_source)


def test_parametric_calibration_small():
    """2n KL / k for scratch and oracle, 40 seeds at n = 1000, with the exact KL of each fit.

    Band [0.75, 1.25]: about 3 standard errors of the mean over 40 seeds at these k, plus
    the O(1/n) remainder at n = 1000."""
    pair, members = linear_setup()
    anchor = Training(LinearGaussianArchitecture())
    k = {"oracle": k_oracle(3, 2), "scratch": k_scratch(3, 5, 2)}
    for method in ("oracle", "scratch"):
        kls = [
            evaluate(f, m, EvaluationSizes(n_kl=200))["kl_exact"]
            for f, m in zip(METHODS[method].fit(members, anchor), members, strict=True)
        ]
        ratio = 2 * 1000 * np.mean(kls) / k[method]
        assert 0.75 <= ratio <= 1.25, (method, ratio)


def test_transfer_matches_the_closed_form_two_stage_fit():
    """Transfer = reduced-rank fit on the source, then least squares on the target over it."""
    pair, members = linear_setup(n_source=2000)
    members = members[:3]
    fitted = transfer(members, Training(LinearGaussianArchitecture()))
    for f, m in zip(fitted, members, strict=True):
        _, source_weight = fit_reduced_rank(m.source.x, m.source.z, rank=2)
        closed = fit_given_embedding(m.target.x, m.target.z, source_weight)
        trained = f.model.conditional()
        torch.testing.assert_close(trained.coefficients, closed.coefficients, atol=1e-6, rtol=0)
        torch.testing.assert_close(trained.covariance, closed.covariance, atol=1e-6, rtol=0)


def test_oracle_members_each_use_their_own_truth():
    """Members of different truths in one ensemble: each oracle model carries its own h."""
    members = [
        make_members(make_task_pair("mixture", d_z=3, seed=seed), [seed], 100, None)[0]
        for seed in (0, 1)
    ]
    fitted = METHODS["oracle"].fit(members, TINY)
    z = members[0].target.z[:10]
    for f, member in zip(fitted, members, strict=True):
        expected = member.pair.target.embedding(z).float()
        torch.testing.assert_close(f.model.embedding(z.float()), expected)


@pytest.mark.parametrize("family", families())
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_score_models(family, method):
    pair = make_task_pair(family, seed=0, **SMALL_DIMS[family])
    members = make_members(pair, [0], n_target=100, n_source=200)
    fitted = METHODS[method].fit(members, TINY_SCORES)[0]
    sizes = EvaluationSizes(n_ode=50, n_samples=100, sampler_steps=50, n_score=200)
    row = evaluate(fitted, members[0], sizes)
    assert fitted.failure is None and fitted.n_train == 80
    for column in ("kl", "score_err", "path_kl_bound", "kl_ode", "sw2", "mmd"):
        assert math.isfinite(row[column]), column
    assert row["score_err_se"] > 0
    # the bound adds the prior KL (>= 0; a Monte Carlo estimate may fall below by its noise)
    prior = row["path_kl_bound"] - 0.5 * row["score_err"]
    assert prior > -4 * row["path_kl_bound_se"]


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_an_architecture_refuses_families_it_has_no_model_for(name):
    architecture = ARCHITECTURES[name]
    for family in [f for f in families() if not supports(architecture, f)]:
        pair = make_task_pair(family, seed=0, **SMALL_DIMS[family])
        data = Dataset(*reversed(pair.target.sample(20, 0)))
        with pytest.raises(ValueError, match=f"no {name} model"):
            architecture.build(pair, data, None)

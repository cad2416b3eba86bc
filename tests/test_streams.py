"""Members' random streams: Philox's known answers, each member's draws its own, their laws."""

import numpy as np
import pytest
import torch
from scipy import stats

from sims.engine import MinibatchConfig, fit_minibatch
from sims.streams import GeneratorStreams, KeyedStreams, make_streams, normal_draws, philox
from tests.test_engine import flow_problem, max_difference

# Random123's known answers for Philox4x32-10: (counter, key, output)
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]
SEEDS = [3, 2**40 + 7, 11, 0, 5]
SIZES = [10, 1000, 7, 1, 123]


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_philox_gives_the_known_answers(counter, key, expected):
    words = philox([torch.tensor(c) for c in counter], [torch.tensor(k) for k in key])
    assert tuple(int(w) for w in words) == expected


def test_philox_is_elementwise():
    counters = [torch.tensor([c[i] for c, _, _ in KNOWN_ANSWERS]) for i in range(4)]
    keys = [torch.tensor([k[i] for _, k, _ in KNOWN_ANSWERS]) for i in range(2)]
    words = torch.stack(philox(counters, keys), -1)
    assert words.tolist() == [list(e) for _, _, e in KNOWN_ANSWERS]


@pytest.mark.parametrize("kind", [GeneratorStreams, KeyedStreams])
def test_a_members_draws_are_its_own_in_any_ensemble(kind):
    """Member 1 draws the same alone, in a full ensemble, and after others have left."""
    streams, alone = kind(SEEDS, SIZES, "cpu"), kind(SEEDS[1:2], SIZES[1:2], "cpu")
    rows, noise = streams.block(4, 16, 3, torch.float32)
    rows_alone, noise_alone = alone.block(4, 16, 3, torch.float32)
    assert torch.equal(rows[:, 1], rows_alone[:, 0]) and torch.equal(noise[:, 1], noise_alone[:, 0])

    keep = [False, True, False, True, True]  # member 1 is the first that stays
    rows, noise = streams.subset(keep).block(4, 16, 3, torch.float32)
    rows_alone, noise_alone = alone.block(4, 16, 3, torch.float32)
    assert torch.equal(rows[:, 0], rows_alone[:, 0]) and torch.equal(noise[:, 0], noise_alone[:, 0])


def test_a_members_draws_padded_to_a_longer_member_are_its_draws_alone():
    """15 rows of 3 features end in an incomplete block of 16 normals, which torch draws by
    the tensor's size: padded draws of 40 rows would differ there."""

    def generators():
        return [torch.Generator().manual_seed(seed) for seed in SEEDS[:2]]

    padded = normal_draws(generators(), 3, torch.float64, 40, lengths=[40, 15])
    alone = normal_draws(generators()[1:], 3, torch.float64, 15)
    assert padded.shape == (2, 40, 3)
    assert torch.equal(padded[1, :15], alone[0]) and not padded[1, 15:].any()


def test_generator_streams_are_torch_generators_seeded_with_the_member_seed():
    rows, noise = GeneratorStreams(SEEDS, SIZES, "cpu").block(5, 8, 2, torch.float64)
    for i, (seed, size) in enumerate(zip(SEEDS, SIZES, strict=True)):
        generator = torch.Generator().manual_seed(seed)
        assert torch.equal(rows[:, i], torch.randint(size, (5, 8), generator=generator))
        expected = torch.randn(5, 8, 2, generator=generator, dtype=torch.float64)
        assert torch.equal(noise[:, i], expected)


def test_keyed_rows_are_uniform_over_each_members_rows():
    rows, _ = KeyedStreams([1, 2], [10, 3], "cpu").block(100, 1000, 0, torch.float32)
    for member, size in enumerate((10, 3)):
        counts = np.bincount(rows[:, member].flatten().numpy(), minlength=size)
        assert len(counts) == size  # nothing at or beyond the size
        assert stats.chisquare(counts).pvalue > 1e-3


def test_keyed_noise_is_standard_normal_and_blocks_differ():
    streams = KeyedStreams([1, 2], [1, 1], "cpu")
    _, first = streams.block(10, 1000, 5, torch.float64)
    _, second = streams.block(10, 1000, 5, torch.float64)
    assert first.shape == (10, 2, 1000, 5)
    for draws in (first[:, 0], first[:, 1], second[:, 0]):
        assert stats.kstest(draws.flatten().numpy(), "norm").pvalue > 1e-3
    # coordinates, members and blocks uncorrelated: |r| within 5 standard errors (1/sqrt(n))
    pairs = [(first[..., 0], first[..., 1]), (first[:, 0], first[:, 1]), (first, second)]
    for a, b in pairs:
        r = np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1]
        assert abs(r) < 5 / np.sqrt(a.numel())


def test_a_member_trained_with_keyed_streams_is_the_same_alone_and_in_an_ensemble():
    config = MinibatchConfig(max_steps=60, eval_every=20, batch_size=64, patience=2)
    models, train, held_out, seeds = flow_problem(4, [200, 80, 150, 60])
    together, report = fit_minibatch(models, train, held_out, seeds, config, streams="keyed")
    alone, alone_report = fit_minibatch(
        [models[1]], [train[1]], [held_out[1]], [seeds[1]], config, streams="keyed"
    )
    assert alone_report.best_step[0] == report.best_step[1]
    assert max_difference(alone[0], together[1]) < 1e-5
    generator, _ = fit_minibatch(models[1:2], train[1:2], held_out[1:2], seeds[1:2], config)
    assert max_difference(generator[0], alone[0]) > 1e-3  # another stream, another model


def test_auto_streams_are_generators_on_a_cpu_and_unknown_kinds_are_refused():
    assert isinstance(make_streams("auto", [0], [5], "cpu"), GeneratorStreams)
    assert isinstance(make_streams("keyed", [0], [5], "cpu"), KeyedStreams)
    with pytest.raises(ValueError, match="streams 'philox'"):
        make_streams("philox", [0], [5], "cpu")

"""Iteration strategies: frequencies under a fixed seed, sequences, rounds, state."""
import pytest
import torch

from rscotr.datasets import ITERATION_STRATEGIES, build_iteration_strategy

NAMES = ['resisc', 'dior', 'potsdam']
SIZES = [6300, 5862, 3456]
EPOCHS = [394, 5862, 1728]


def build(cfg, seed=0):
    cfg = dict(cfg)
    cfg.setdefault('seed', seed)
    return build_iteration_strategy(
        cfg, default_args=dict(num_loaders=3, names=NAMES, dataset_sizes=SIZES,
                               epoch_lengths=EPOCHS))


def draw(strategy, n):
    return [strategy() for _ in range(n)]


def freqs(seq, n=3):
    counts = torch.bincount(torch.tensor(seq), minlength=n).double()
    return (counts / counts.sum()).tolist()


def test_registry_has_the_six_strategies():
    assert {'constant', 'round_robin', 'repeated_sequence', 'random', 'weighted_random',
            'size_proportional'} <= set(ITERATION_STRATEGIES.module_dict)


@pytest.mark.parametrize('idx, expected', [(2, 2), ('dior', 1), (0, 0)])
def test_constant(idx, expected):
    assert draw(build(dict(type='constant', idx=idx)), 10) == [expected] * 10


def test_constant_rejects_bad_reference():
    with pytest.raises(IndexError):
        build(dict(type='constant', idx=3))
    with pytest.raises(KeyError):
        build(dict(type='constant', idx='coco'))


def test_round_robin():
    assert draw(build(dict(type='round_robin')), 7) == [0, 1, 2, 0, 1, 2, 0]


def test_repeated_sequence_indices_and_names():
    s = build(dict(type='repeated_sequence', sequence=[1, 2, 2, 0, 0, 0]))
    assert draw(s, 12) == [1, 2, 2, 0, 0, 0] * 2
    s = build(dict(type='repeated_sequence', sequence=['potsdam', 'resisc']))
    assert draw(s, 4) == [2, 0, 2, 0]
    with pytest.raises(ValueError):
        build(dict(type='repeated_sequence', sequence=[]))


def test_random_is_uniform_and_seeded():
    seq = draw(build(dict(type='random'), seed=3), 6000)
    for f in freqs(seq):
        assert abs(f - 1 / 3) < 0.03
    assert seq[:50] == draw(build(dict(type='random'), seed=3), 50)
    assert seq[:50] != draw(build(dict(type='random'), seed=4), 50)


def test_weighted_random_normalises_p():
    s = build(dict(type='weighted_random', p=[2, 1, 1]))
    assert torch.allclose(s.p, torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64))
    f = freqs(draw(s, 8000))
    assert abs(f[0] - 0.5) < 0.03 and abs(f[1] - 0.25) < 0.03


def test_weighted_random_by_name_and_zero_weight():
    s = build(dict(type='weighted_random', p=dict(dior=1, potsdam=3)))
    seq = draw(s, 4000)
    assert 0 not in seq
    assert abs(freqs(seq)[2] - 0.75) < 0.03


def test_weighted_random_batch_weighted():
    s = build(dict(type='weighted_random', batch_weighted=True))
    expected = torch.tensor(EPOCHS, dtype=torch.float64) / sum(EPOCHS)
    assert torch.allclose(s.p, expected)
    f = freqs(draw(s, 8000))
    for got, want in zip(f, expected.tolist()):
        assert abs(got - want) < 0.03


@pytest.mark.parametrize('cfg', [
    dict(type='weighted_random'),
    dict(type='weighted_random', p=[1, 1]),
    dict(type='weighted_random', p=[0, 0, 0]),
    dict(type='weighted_random', p=[1, -1, 1]),
    dict(type='weighted_random', p=[1, 1, 1], batch_weighted=True),
])
def test_weighted_random_rejects_bad_p(cfg):
    with pytest.raises(ValueError):
        build(cfg)


def test_size_proportional_frequencies():
    s = build(dict(type='size_proportional'))
    assert s.exhaust_all
    f = freqs(draw(s, 8000))
    for got, want in zip(f, [n / sum(SIZES) for n in SIZES]):
        assert abs(got - want) < 0.03


def test_size_proportional_skips_exhausted_until_round_ends():
    s = build(dict(type='size_proportional'))
    s.mark_exhausted(0)
    assert not s.all_exhausted()
    assert 0 not in draw(s, 500)
    s.mark_exhausted(2)
    assert set(draw(s, 50)) == {1}
    s.mark_exhausted(1)
    assert s.all_exhausted()
    with pytest.raises(RuntimeError):
        s()
    s.new_round()
    assert set(draw(s, 500)) == {0, 1, 2}


@pytest.mark.parametrize('cfg', [
    dict(type='round_robin'),
    dict(type='repeated_sequence', sequence=[1, 2, 2, 0, 0, 0]),
    dict(type='random'),
    dict(type='weighted_random', p=[0.2, 0.5, 0.3]),
    dict(type='size_proportional'),
])
def test_state_dict_round_trip(cfg):
    s = build(cfg, seed=7)
    draw(s, 17)
    if s.exhaust_all:
        s.mark_exhausted(1)
    state = s.state_dict()
    expected = draw(s, 40)
    other = build(cfg, seed=123)
    other.load_state_dict(state)
    assert draw(other, 40) == expected

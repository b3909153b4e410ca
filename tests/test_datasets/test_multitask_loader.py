"""The co-training loader: tagged batches, restarts, exhaust-all rounds, state."""
import pytest
import torch
from mmcv.parallel import DataContainer
from torch.utils.data import Dataset

from rscotr.datasets import (MultiTaskLoader, TaskLoader, build_task_dataloader,
                             parse_loader_cfgs)


class ToyDataset(Dataset):
    """``n`` samples shaped like collated upstream samples, ids offset by ``base``."""

    def __init__(self, n: int, base: int = 0):
        self.n = n
        self.base = base

    def __len__(self):
        return self.n

    def __getitem__(self, idx):
        return dict(img=torch.full((3, 4, 4), float(self.base + idx)),
                    img_metas=DataContainer(dict(idx=self.base + idx), cpu_only=True))


def toy_loader(name, task, n, batch, base=0, seed=0):
    dataloader = build_task_dataloader(ToyDataset(n, base), samples_per_gpu=batch,
                                       workers_per_gpu=0, shuffle=True, seed=seed)
    return TaskLoader(name, task, dataloader)


def ids(batch):
    return sorted(meta['idx'] for meta in batch['img_metas'].data[0])


def three_loaders():
    return [toy_loader('resisc', 'cls', 8, 4, base=0),      # 2 batches per epoch
            toy_loader('dior', 'det', 3, 1, base=100),      # 3 batches per epoch
            toy_loader('potsdam', 'seg', 4, 2, base=200)]   # 2 batches per epoch


def test_batches_are_tagged_with_task_dataset_and_head():
    loader = MultiTaskLoader(three_loaders(), dict(type='round_robin'))
    seen = []
    for _ in range(6):
        batch = next(loader)
        seen.append((batch['task'], batch['dataset']))
        assert set(batch) == {'img', 'img_metas', 'task', 'dataset', 'head'}
        assert batch['head'] == batch['task']  # by default the head named like the task
        base = {'resisc': 0, 'dior': 100, 'potsdam': 200}[batch['dataset']]
        assert all(base <= i < base + 100 for i in ids(batch))
        assert batch['img'].shape[1:] == (3, 4, 4)
    assert seen == [('cls', 'resisc'), ('det', 'dior'), ('seg', 'potsdam')] * 2
    assert loader.steps == [2, 2, 2]


def test_exhausted_loader_restarts_with_a_new_epoch_order():
    loader = MultiTaskLoader([toy_loader('resisc', 'cls', 8, 4, seed=1)],
                             dict(type='constant', idx='resisc'))
    epochs = []
    for _ in range(3):
        epochs.append([ids(next(loader)) for _ in range(2)])
    for epoch in epochs:  # every epoch covers the dataset once
        assert sorted(sum(epoch, [])) == list(range(8))
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]  # reshuffled by set_epoch
    assert loader.loaders[0].epoch == 2


def test_size_proportional_exhausts_every_loader_before_a_new_round():
    loaders = three_loaders()
    loader = MultiTaskLoader(loaders, dict(type='size_proportional', seed=3))
    per_round = {'resisc': 2, 'dior': 3, 'potsdam': 2}
    for _ in range(3):  # three rounds of 7 batches
        counts = {name: 0 for name in per_round}
        for _ in range(7):
            counts[next(loader)['dataset']] += 1
        assert counts == per_round
    assert [l.epoch for l in loaders] == [2, 2, 2]


def test_state_dict_resumes_the_strategy_sequence():
    a = MultiTaskLoader(three_loaders(), dict(type='random', seed=5))
    for _ in range(5):
        next(a)
    state = a.state_dict()
    expected = [next(a)['dataset'] for _ in range(10)]
    b = MultiTaskLoader(three_loaders(), dict(type='random', seed=99))
    b.load_state_dict(state)
    assert [next(b)['dataset'] for _ in range(10)] == expected
    assert state['steps'] == {'resisc': a.steps[0] - expected.count('resisc'),
                              'dior': a.steps[1] - expected.count('dior'),
                              'potsdam': a.steps[2] - expected.count('potsdam')}


def test_len_and_epoch_for_the_runner():
    loader = MultiTaskLoader(three_loaders())
    assert len(loader) == 7
    assert loader.epoch == 0
    assert iter(loader) is loader


def test_parse_loader_cfgs_layouts_and_errors():
    cfg = dict(resisc=dict(task='cls', dataset=dict(type='X')), dior=None,
               potsdam=dict(task='seg', dataset=dict(type='Y'), samples_per_gpu=2))
    entries = parse_loader_cfgs(cfg)
    assert [e['name'] for e in entries] == ['resisc', 'potsdam']
    listed = parse_loader_cfgs([dict(name='a', task='det', dataset=dict(type='Z'))])
    assert listed[0]['name'] == 'a'
    with pytest.raises(KeyError):
        parse_loader_cfgs(dict(a=dict(task='cls', dataset={}, batch_size=2)))
    with pytest.raises(KeyError):
        parse_loader_cfgs(dict(a=dict(dataset={})))
    with pytest.raises(ValueError):
        parse_loader_cfgs(dict(a=None))


def test_unknown_task_and_duplicate_names_are_errors():
    with pytest.raises(KeyError):
        toy_loader('x', 'depth', 2, 1)
    with pytest.raises(ValueError):
        MultiTaskLoader([toy_loader('a', 'cls', 2, 1), toy_loader('a', 'det', 2, 1)])


def five_loaders():
    """Five datasets: two classification sets with their own heads, a second
    detection set sharing the ``det`` head, and a segmentation set."""
    loaders = [toy_loader('resisc', 'cls', 8, 2, base=0),
               toy_loader('dior', 'det', 6, 1, base=100),
               toy_loader('potsdam', 'seg', 4, 2, base=200),
               toy_loader('ucm', 'cls', 6, 3, base=300),
               toy_loader('boxes', 'det', 5, 1, base=400)]
    loaders[3].head = 'ucm'
    return loaders


def test_a_sequence_over_five_datasets_counts_batches_as_specified():
    sequence = ['resisc', 'ucm', 'dior', 'boxes', 'dior', 'potsdam', 'ucm']
    loader = MultiTaskLoader(five_loaders(), dict(type='repeated_sequence', sequence=sequence))
    names = [next(loader)['dataset'] for _ in range(3 * len(sequence))]
    assert names == sequence * 3
    assert dict(zip(loader.names, loader.steps)) == {'resisc': 3, 'dior': 6, 'potsdam': 3,
                                                     'ucm': 6, 'boxes': 3}


def test_weighted_random_over_five_datasets_follows_the_weights_and_tags_heads():
    p = {'resisc': 1, 'dior': 2, 'potsdam': 1, 'ucm': 4, 'boxes': 2}
    loader = MultiTaskLoader(five_loaders(), dict(type='weighted_random', p=p, seed=3))
    n = 2000
    heads = {}
    for _ in range(n):
        batch = next(loader)
        heads[batch['dataset']] = batch['head']
        base = {'resisc': 0, 'dior': 100, 'potsdam': 200, 'ucm': 300, 'boxes': 400}
        assert all(base[batch['dataset']] <= i < base[batch['dataset']] + 100 for i in ids(batch))
    counts = dict(zip(loader.names, loader.steps))
    assert sum(counts.values()) == n
    for name, weight in p.items():  # within 4 standard deviations of n * weight / 10
        expected = n * weight / 10
        assert abs(counts[name] - expected) < 4 * (expected * (1 - weight / 10)) ** 0.5, name
    assert heads == {'resisc': 'cls', 'dior': 'det', 'potsdam': 'seg', 'ucm': 'ucm',
                     'boxes': 'det'}

"""genlab.data.batches.RandomSlices, SymVAE's batching (docs/symvae.md §3.1): contiguous slices at
random offsets, the stored order first, a fresh permutation each period; pure in (seed, index)."""

from __future__ import annotations

import torch

from genlab.data.batches import SAMPLERS, RandomSlices, ShuffledBatches
from genlab.data.sources import Tensors

N, B = 100, 8


def data():
    return Tensors("rows", x=torch.arange(N, dtype=torch.float32)[:, None])


def rows_of(batches, periods: int = 1) -> list[torch.Tensor]:
    out = []
    for _ in range(periods):
        out += [b["x"][:, 0].long() for b in batches]
    return out


def test_the_first_period_slices_the_stored_order_at_random_offsets():
    slices = RandomSlices(data(), B, seed=3)
    assert len(slices) == N // B  # a period: 12 batches
    got = rows_of(slices)
    assert len(got) == 12
    for rows in got:
        assert torch.equal(rows, torch.arange(rows[0], rows[0] + B))  # contiguous rows of the stored order
        assert 0 <= rows[0] < N - B
    assert len({int(r[0]) for r in got}) > 3  # the offsets vary


def test_later_periods_slice_a_fresh_permutation_and_every_batch_is_a_pure_function_of_seed_and_index():
    position = {"at": 0}
    slices = RandomSlices(data(), B, seed=3).bind(lambda: position["at"])
    first = rows_of(slices)
    position["at"] = 12
    second = rows_of(slices)
    assert not any(torch.equal(r, torch.arange(r[0], r[0] + B)) for r in second)  # no longer stored-order slices
    perm = slices.permutation(1)
    offsets = slices.offsets(1)
    assert all(torch.equal(rows, perm[o : o + B]) for rows, o in zip(second, offsets.tolist()))
    position["at"] = 17  # resumed in the middle of the second period: the same batches as uninterrupted
    assert all(torch.equal(a, b) for a, b in zip(rows_of(slices), second[5:]))
    position["at"] = 0
    assert all(torch.equal(a, b) for a, b in zip(rows_of(RandomSlices(data(), B, seed=3)), first))
    assert not all(torch.equal(a, b) for a, b in zip(rows_of(RandomSlices(data(), B, seed=4)), first))


def test_data_parallel_ranks_split_each_slice():
    whole = rows_of(RandomSlices(data(), B, seed=1))
    parts = [rows_of(RandomSlices(data(), B, seed=1, rank=r, world_size=2)) for r in range(2)]
    assert all(torch.equal(torch.cat([parts[0][i], parts[1][i]]), whole[i]) for i in range(len(whole)))


def test_the_training_config_names_the_samplers():
    assert SAMPLERS == {"shuffle": ShuffledBatches, "random_slices": RandomSlices}

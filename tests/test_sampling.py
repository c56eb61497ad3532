"""FactorIndex: vectorised row look-ups by factor class."""

import numpy as np
import torch

from genlab.data.base import FactorGrid
from genlab.data.sampling import FactorIndex

GRID = FactorGrid(("a", "b", "c"), (np.arange(3.0), np.arange(4.0), np.arange(2.0)))


def test_find_returns_the_row_of_each_combination_or_minus_one():
    classes = torch.from_numpy(GRID.classes())
    keep = torch.arange(len(classes)) % 3 != 0  # a split with holes
    index = FactorIndex(classes[keep], GRID.sizes)
    rows = index.find(classes)
    assert torch.equal(rows[~keep], torch.full(((~keep).sum(),), -1))
    assert torch.equal(classes[keep][rows[keep]], classes[keep])


def test_rows_with_samples_only_matching_rows_and_all_of_them():
    classes = torch.from_numpy(GRID.classes())
    index = FactorIndex(classes, GRID.sizes)
    g = torch.Generator().manual_seed(0)
    factor = torch.full((4000,), 1)
    value = torch.full((4000,), 2)
    rows = index.rows_with(factor, value, g)
    assert (classes[rows, 1] == 2).all()
    assert len(rows.unique()) == 6  # 3 x 2 rows have b == 2; all are drawn
    mixed = index.rows_with(torch.tensor([0, 2, 1]), torch.tensor([2, 1, 0]), g)
    assert classes[mixed[0], 0] == 2 and classes[mixed[1], 2] == 1 and classes[mixed[2], 1] == 0
    assert index.count(torch.tensor([1]), torch.tensor([3])).item() == 6

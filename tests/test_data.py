"""Training batches taken by indexing."""

import pytest
import torch
from torch.utils.data import DataLoader, SubsetRandomSampler, TensorDataset

from sbi_cmpe.data import indexed_batches


def test_indexed_batches_match_the_data_loader():
    tensors = (torch.randn(100, 2), torch.randn(100, 3), torch.ones(100, 1))
    loader = DataLoader(
        TensorDataset(*tensors),
        batch_size=16,
        drop_last=True,
        sampler=SubsetRandomSampler(list(range(7, 90))),  # 83: the last 3 are dropped
    )
    torch.manual_seed(3)
    expected = [batch for _ in range(2) for batch in loader]
    after_loader = torch.rand(3)
    torch.manual_seed(3)
    got = [batch for _ in range(2) for batch in indexed_batches(loader)]
    assert torch.equal(torch.rand(3), after_loader)  # the same random draws
    assert len(indexed_batches(loader)) == len(loader) == 5
    assert len(got) == len(expected) == 10
    for a, b in zip(got, expected):
        assert all(torch.equal(u, v) for u, v in zip(a, b))
    with pytest.raises(TypeError, match="TensorDataset"):
        indexed_batches(DataLoader(list(range(10)), batch_size=2))
    with pytest.raises(ValueError, match="collate_fn"):
        indexed_batches(DataLoader(TensorDataset(*tensors), batch_size=2, collate_fn=list))

"""``FlopTally`` remembers a formula's count per operator and argument metadata on meta tensors.
Calls that share shapes but differ in an argument the formula reads (stride, padding,
dilation, groups, transposition) or in one shape must still count as
``torch.utils.flop_counter.FlopCounterMode`` counts them (the oracle), on meta and on CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from stridelab.inspect.flops import FlopTally


def _mixed_calls(x: torch.Tensor, w: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    for stride in (1, 2, 1):
        F.conv2d(x, w, stride=stride, padding=1)
    F.conv2d(x, w, dilation=2, padding=2)
    F.conv2d(x, w[:, :4], groups=2, padding=1)
    F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
    for rows in (5, 7, 5):
        torch.mm(a[:rows], b)
        torch.addmm(torch.zeros(rows, b.shape[1], device=a.device), a[:rows], b)
    torch.bmm(a.unsqueeze(0).expand(3, -1, -1), b.unsqueeze(0).expand(3, -1, -1))


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_memoised_counts_match_flop_counter(device: str) -> None:
    x = torch.zeros(2, 8, 12, 12, device=device)
    w = torch.zeros(6, 8, 3, 3, device=device)
    a = torch.zeros(9, 4, device=device)
    b = torch.zeros(4, 11, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as oracle:
        _mixed_calls(x, w, a, b)
    with torch.no_grad(), FlopTally() as tally:
        _mixed_calls(x, w, a, b)
        first = tally.total
        _mixed_calls(x, w, a, b)  # the second time, every count comes from the memo on meta
    assert first == oracle.get_total_flops() > 0
    assert tally.total == 2 * first
    if device == "meta":
        assert tally._counted  # the memo was used
    else:
        assert not tally._counted  # real tensors are never keys

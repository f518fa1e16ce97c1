"""Recurrent modules as one operator, and the meta-result memo of the FLOP tally.

Oracles: autograd (which input pixels an output unit's gradient reaches), torch.utils.flop_counter
on the same eval forward, and PyTorch's own meta kernels for the memo (every memoised result must
have exactly the metadata the kernel gives)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from stridelab.inspect import inspect
from stridelab.inspect.flops import FlopTally, MetaMemo
from stridelab.inspect.recurrent import recurrent_macs, recurrent_outputs
from tests._budget import budget
from tests.inspect.test_layouts import gradient_box, report_of, reported_box

SIZE = 32


class RowColumnLSTM(nn.Module):
    """Sequencer2D-style: a 4x4/4 patch stem, then a bidirectional LSTM down each column (along
    H) and, if ``both``, one along each row (along W), then a 1x1 conv."""

    def __init__(self, both: bool, bidirectional: bool = True) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 4, stride=4)
        hidden = 4 if bidirectional else 8
        self.down = nn.LSTM(8, hidden, batch_first=True, bidirectional=bidirectional)
        self.across = nn.GRU(8, hidden, batch_first=True, bidirectional=bidirectional) \
            if both else None
        self.head = nn.Conv2d(8, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x).permute(0, 2, 3, 1)  # N, H, W, C
        n, h, w, c = x.shape
        columns = x.permute(0, 2, 1, 3).reshape(n * w, h, c)
        x = self.down(columns)[0].reshape(n, w, h, -1).permute(0, 2, 1, 3)
        if self.across is not None:
            rows = x.reshape(n * h, w, -1)
            x = self.across(rows)[0].reshape(n, h, w, -1)
        return self.head(x.permute(0, 3, 1, 2))


def test_lstm_down_columns_reads_whole_columns_and_keeps_the_row_field() -> None:
    model = RowColumnLSTM(both=False)
    report = report_of(model)  # MACs == FlopCounterMode, params sum to the model's
    lstm = report.layer("down")
    assert lstm.global_context and lstm.params == sum(p.numel() for p in model.down.parameters())
    assert lstm.receptive_field.size[1] == 4  # along W: still one 4-px patch
    for unit in ((0, 0), (3, 5), (7, 7)):
        rows, cols = gradient_box(model, SIZE, unit)
        assert rows == (0, SIZE - 1)  # a column's LSTM reads every patch above and below
        assert cols == reported_box(report.field, unit, SIZE)[1]


def test_lstm_then_gru_is_global() -> None:
    model = RowColumnLSTM(both=True)
    report = report_of(model)
    assert report.global_context
    assert "small-field" not in {d.code for d in report.diagnostics}
    assert gradient_box(model, SIZE, (2, 6)) == [(0, SIZE - 1)] * 2


def test_one_way_lstm_is_a_superset_of_its_reads() -> None:
    model = RowColumnLSTM(both=False, bidirectional=False)
    report = report_of(model)
    assert report.layer("down").global_context
    rows, _ = gradient_box(model, SIZE, (2, 3))
    assert rows == (0, 11)  # patches 0..2 of the column: step t reads steps 0..t


def test_recurrent_modules_are_one_row_each() -> None:
    report = inspect(RowColumnLSTM(both=True), (3, SIZE, SIZE))
    names = [r.name for r in report.layers]
    assert names.count("down") == 1 and names.count("across") == 1
    assert not any(name.startswith(("down.", "across.")) for name in names)


def _meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(*shape, device="meta", dtype=dtype)


def _signature(value: object) -> object:
    if isinstance(value, torch.Tensor):
        return (tuple(value.shape), value.stride(), value.storage_offset(), value.dtype,
                value.device.type)
    if isinstance(value, (tuple, list)):
        return tuple(_signature(v) for v in value)
    return value


aten = torch.ops.aten
CASES = [
    (aten.native_layer_norm.default, lambda: (_meta(2, 5, 7), [7], _meta(7), _meta(7), 1e-5)),
    (aten.native_batch_norm.default,
     lambda: (_meta(2, 4, 6, 6), _meta(4), _meta(4), _meta(4), _meta(4), False, 0.1, 1e-5)),
    (aten.gelu.default, lambda: (_meta(3, 8).t(),)),  # a transposed input keeps its strides
    (aten.addmm.default, lambda: (_meta(6), _meta(4, 5), _meta(5, 6))),
    (aten.add.Tensor, lambda: (_meta(4, dtype=torch.int64), 2)),
    (aten.add.Tensor, lambda: (_meta(4, dtype=torch.int64), 2.0)),  # int + float -> float
    (aten.mul.Tensor, lambda: (_meta(2, 3, 4).permute(2, 0, 1), _meta(1, 2, 1))),
    (aten.cat.default, lambda: ([_meta(2, 3), _meta(4, 3)], 0)),
    (aten.sigmoid_.default, lambda: (_meta(2, 3),)),
    (aten.unsqueeze_.default, lambda: (_meta(2, 3), 0)),  # in place, changes the metadata
    (aten.transpose.int, lambda: (_meta(2, 3), 0, 1)),  # a view: always run
]


@pytest.mark.parametrize(("func", "make"), CASES, ids=[str(f) for f, _ in CASES])
def test_memoised_results_match_the_meta_kernel(func: object, make: object) -> None:
    memo = MetaMemo()
    for _ in range(3):  # the first call runs the kernel, later ones come from the memo
        args = make()  # type: ignore[operator]
        expected_args = make()  # type: ignore[operator]
        expected = func(*expected_args)  # type: ignore[operator]
        got = memo.call(func, args, {})
        assert _signature(got) == _signature(expected)
        assert _signature(args) == _signature(expected_args)  # in-place effects alike
        if str(func).endswith("_.default"):
            assert got is args[0]


def test_tally_as_a_mode_and_called_directly_agree_with_flop_counter() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    model = RowColumnLSTM(both=True).to("meta").eval()
    x = torch.zeros(2, 3, SIZE, SIZE, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as oracle:
        model(x)
    with torch.no_grad(), FlopTally() as tally:
        model(x)
        model(x)  # second pass: everything from the memo
    assert tally.total == 2 * oracle.get_total_flops() > 0


@settings(max_examples=budget(40), deadline=None)
@given(kind=st.sampled_from(["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]), layers=st.integers(1, 3),
       bidirectional=st.booleans(), projection=st.integers(0, 3), batch_first=st.booleans(),
       shape=st.sampled_from(["batched", "unbatched"]), steps=st.integers(1, 5))
def test_recurrent_cost_and_shapes_without_steps(kind: str, layers: int, bidirectional: bool,
                                                 projection: int, batch_first: bool, shape: str,
                                                 steps: int) -> None:
    """On meta the inspector does not run a recurrent module's steps: its MACs must equal
    FlopCounterMode / 2 of the real call, and its stand-in outputs the real outputs' shapes."""
    if kind == "LSTM":
        module: nn.RNNBase = nn.LSTM(5, 7, layers, bidirectional=bidirectional,
                                     batch_first=batch_first, proj_size=projection % 7)
    elif kind == "GRU":
        module = nn.GRU(5, 7, layers, bidirectional=bidirectional, batch_first=batch_first)
    else:
        module = nn.RNN(5, 7, layers, nonlinearity="tanh" if kind == "RNN_TANH" else "relu",
                        bidirectional=bidirectional, batch_first=batch_first)
    module = module.to("meta")
    x = torch.empty((steps, 5) if shape == "unbatched" else
                    (2, steps, 5) if batch_first else (steps, 2, 5), device="meta")
    with FlopCounterMode(display=False) as counter:
        real = module(x)
    assert 2 * recurrent_macs(module, x) == counter.get_total_flops()
    stand_in = recurrent_outputs(module, x)
    assert [t.shape for t in tree_leaves(stand_in)] == [t.shape for t in tree_leaves(real)]
    assert all(t.device.type == "meta" for t in tree_leaves(stand_in))


def test_meta_inspection_runs_no_recurrent_steps() -> None:
    """The whole model on meta: the LSTM's cost is still FlopCounterMode's, its parameters are
    attributed, and no per-step operator reaches the dispatch (the steps did not run)."""
    model = RowColumnLSTM(both=True).eval()
    seen: list[str] = []
    original = nn.LSTM.forward

    def spy(self: nn.LSTM, *args: object) -> object:
        seen.append("ran")
        return original(self, *args)  # type: ignore[arg-type]

    nn.LSTM.forward = spy  # type: ignore[method-assign,assignment]
    try:
        report = inspect(model.to("meta"), (3, SIZE, SIZE), device="meta")
    finally:
        nn.LSTM.forward = original  # type: ignore[method-assign]
    assert not seen
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, SIZE, SIZE, device="meta"))
    assert report.macs == counter.get_total_flops() // 2
    assert sum(r.params for r in report.layers) == sum(p.numel() for p in model.parameters())

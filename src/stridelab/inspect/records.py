"""The inspector's results: one :class:`LayerRecord` per operator, :class:`Diagnostic` findings
and the :class:`Report` that holds them and renders them.

Conventions: shapes include the batch axis; ``kernel``, ``stride``, ``padding`` and ``dilation``
are per spatial axis, padding as ``(before, after)`` pairs in input pixels of that layer;
``effective_stride`` and ``receptive_field`` are in pixels of the model input (Distill 2019).
``macs`` are multiply-accumulates = FLOPs / 2 as counted by ``torch.utils.flop_counter``
(bias additions are not counted); ``activation_bytes`` are the bytes of the layer's outputs
(0 for in-place results; views count in full, as in torchinfo).

``global_context`` is True when units of a layer also read the whole input through a global
operator: attention over the whole token grid, a global pooling, a global gate (squeeze-
excitation, ECA, GC), normalisation with statistics over the map (group norm).
``receptive_field`` is then still the *local* field of the main path (what the convolutions,
patch embeddings and windows give); a fully global layer such as a pooled head shows one window
over the whole map. The report's ``global_context`` is that of the model output.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from stridelab.arith import ReceptiveField

Number = int | Fraction
SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class LayerRecord:
    """One operator (a module call or a functional call) in execution order."""

    name: str
    op: str
    inputs: tuple[str, ...]
    input_shapes: tuple[tuple[int, ...], ...]
    output_shape: tuple[int, ...]
    kernel: tuple[int, ...] | None
    stride: tuple[Number, ...] | None
    padding: tuple[tuple[int, int], ...] | None
    dilation: tuple[int, ...] | None
    effective_stride: tuple[Number, ...]
    receptive_field: ReceptiveField
    macs: int
    params: int
    activation_bytes: int
    spatial: bool = True
    window: str | None = None
    global_context: bool = False

    @property
    def depth(self) -> int:  # noqa: D401
        """Nesting depth of the name (``layer1.0.conv1`` is 3)."""
        return self.name.count(".") + 1


@dataclass(frozen=True)
class Diagnostic:
    """A finding: ``severity`` (error / warning / info), the layer, what is wrong, what to do."""

    severity: str
    code: str
    layer: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"[{self.severity}] {self.layer}: {self.message} Fix: {self.fix}"


class Report:
    """Per-layer stride, receptive field, cost and diagnostics of one model on one input size."""

    def __init__(self, model_name: str, input_size: tuple[int, ...], batch_size: int,
                 device: str, layers: list[LayerRecord], field: ReceptiveField, params: int,
                 diagnostics: list[Diagnostic], capture: str, global_context: bool = False
                 ) -> None:
        self.model_name = model_name
        self.input_size = input_size
        self.batch_size = batch_size
        self.device = device
        self.layers = layers
        self.field = field
        self.params = params
        self.diagnostics = diagnostics
        self.capture = capture
        self.global_context = global_context
        self._by_name = {layer.name: layer for layer in layers}

    @property
    def macs(self) -> int:
        """Total multiply-accumulates (FLOPs / 2, torch.utils.flop_counter), whole batch."""
        return sum(layer.macs for layer in self.layers)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def activation_bytes(self) -> int:
        """Bytes of every recorded output (an upper bound on what inference keeps at once)."""
        return sum(layer.activation_bytes for layer in self.layers)

    def field_at(self, name: str) -> ReceptiveField:
        """Receptive field of the output of layer ``name`` (KeyError lists close names)."""
        if name not in self._by_name:
            close = [n for n in self._by_name if name in n or n in name][:5]
            hint = f"; similar: {', '.join(close)}" if close else ""
            raise KeyError(f"no layer named {name!r} in the report{hint}")
        return self._by_name[name].receptive_field

    def layer(self, name: str) -> LayerRecord:
        self.field_at(name)
        return self._by_name[name]

    def __repr__(self) -> str:
        return (f"Report({self.model_name}, input {'x'.join(map(str, self.input_size))}, "
                f"{len(self.layers)} layers, {self.macs} MACs, {self.params} params, "
                f"{len(self.diagnostics)} diagnostics)")

    def to_table(self, depth: int | None = None, width: int = 160) -> str:
        """The table as text, rendered by rich without colour (plus totals and a diagnostics
        count); ``depth`` folds layers nested deeper than ``depth`` name parts into one row."""
        from stridelab.inspect.render import table_text
        return table_text(self, depth, width)

    def rich_table(self, depth: int | None = None) -> Any:
        """The same table as a ``rich.table.Table`` for your own Console."""
        from stridelab.inspect.render import rich_table
        return rich_table(self, depth)

    def to_json(self, indent: int | None = 2) -> str:
        from stridelab.inspect.render import to_json
        return to_json(self, indent)

    def to_dict(self) -> dict[str, object]:
        from stridelab.inspect.render import to_dict
        return to_dict(self)

    def to_csv(self) -> str:
        from stridelab.inspect.render import to_csv
        return to_csv(self)

    def to_markdown(self, depth: int | None = None, diagnostics: bool = True) -> str:
        from stridelab.inspect.render import to_markdown
        return to_markdown(self, depth, diagnostics)

    def plot(self, path: str | Path) -> Path:
        """Receptive-field size and feature-map size per layer, as a PNG at ``path``."""
        from stridelab.inspect.plot import plot_report
        return plot_report(self, Path(path))

    def verify(self, model: Any, *, units: Any = None, weights: str = "random",
               layers: Any = None, samples: int = 2, seed: int = 0,
               device: Any = "cpu") -> Any:
        """Backpropagate from output units of ``model`` and check each reported field contains
        the nonzero-gradient box and is tight; see :func:`stridelab.inspect.verify.verify`."""
        from stridelab.inspect.verify import verify
        return verify(self, model, units=units, weights=weights, layers=layers,
                      samples=samples, seed=seed, device=device)

"""Numbers for ``stridelab animate --values``: a small deterministic example run by stridelab.ops.

The example input holds small integers (1 to 4) and the kernel holds -1, 0 and 1, so every product
and sum is an exact small integer that fits in a cell. The convolution itself is computed by
:func:`stridelab.ops.conv` / :func:`stridelab.ops.conv_transpose` (NumPy, no torch); this module
only reads values off the grid to show the products of each frame.

* Convolution frame: the products ``x[tap] * w[tap]`` (padding reads 0) and the output value
  written in this frame, taken from ``ops.conv``.
* Transposed frame: the products ``x[i] * w[tap]`` scattered by input ``i``, and the output so
  far. Because the transposed convolution is linear in its input, "the output after the first
  ``n`` inputs" is ``ops.conv_transpose`` of the input with every later input set to 0; the last
  frame is the full result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stridelab.viz.geometry import Cell, FramePlan


def example_input(height: int, width: int) -> np.ndarray:
    """Deterministic ``(height, width)`` example input: ``(row * 3 + column) % 4 + 1``."""
    rows, cols = np.indices((height, width))
    return ((rows * 3 + cols) % 4 + 1).astype(np.float64)


def example_kernel(height: int, width: int) -> np.ndarray:
    """Deterministic ``(height, width)`` kernel of -1, 0, 1: ``(row + 2 * column) % 3 - 1``."""
    rows, cols = np.indices((height, width))
    return ((rows + 2 * cols) % 3 - 1).astype(np.float64)


@dataclass(frozen=True)
class Product:
    """One tap of one frame: ``value * weight = product``."""

    value: float
    weight: float

    @property
    def product(self) -> float:
        return self.value * self.weight


@dataclass(frozen=True)
class FrameValues:
    """``products`` per frame (tap order of :class:`~stridelab.viz.geometry.Frame`) and
    ``outputs`` per frame: the output grid as it stands after the frame (``nan`` = not written
    yet), over the real output ``(height, width)``."""

    inputs: np.ndarray
    weight: np.ndarray
    output: np.ndarray
    products: tuple[tuple[Product, ...], ...]
    outputs: tuple[np.ndarray, ...]


def _value_at(inputs: np.ndarray, cell: Cell) -> float:
    row, col = cell
    inside = 0 <= row < inputs.shape[0] and 0 <= col < inputs.shape[1]
    return float(inputs[row, col]) if inside else 0.0


def frame_values(plan: FramePlan) -> FrameValues:
    """Values of the example for every frame of ``plan`` (computed by :mod:`stridelab.ops`)."""
    from stridelab import ops  # NumPy only; imported here so geometry works without it

    spec = plan.spec
    inputs = example_input(*spec.input_size)
    weight = example_kernel(*spec.kernel)
    x = inputs[None, None]
    w = weight[None, None]
    products: list[tuple[Product, ...]] = []
    outputs: list[np.ndarray] = []
    if not spec.transposed:
        output = np.asarray(ops.conv(x, w, stride=spec.stride, padding=spec.padding,
                                     dilation=spec.dilation))[0, 0]
        so_far = np.full(spec.output_size, np.nan)
        for frame in plan.frames:
            products.append(tuple(Product(_value_at(inputs, cell), float(weight[tap]))
                                  for cell, tap in zip(frame.input_cells, frame.taps)))
            (orow, ocol), = frame.output_cells
            so_far[orow, ocol] = output[orow, ocol]
            outputs.append(so_far.copy())
    else:
        def transposed(inp: np.ndarray) -> np.ndarray:
            full = np.asarray(ops.conv_transpose(
                inp, w, stride=spec.stride, padding=spec.padding, dilation=spec.dilation,
                output_padding=spec.output_padding))
            plane: np.ndarray = full[0, 0]
            return plane

        output = transposed(x)
        mask = np.zeros_like(inputs)
        written = np.zeros(spec.output_size, dtype=bool)
        for frame in plan.frames:
            (irow, icol), = frame.input_cells
            value = float(inputs[irow, icol])
            products.append(tuple(Product(value, float(weight[tap])) for tap in frame.taps))
            mask[irow, icol] = 1.0
            partial = transposed((inputs * mask)[None, None])
            for row, col in frame.output_cells:
                if 0 <= row < written.shape[0] and 0 <= col < written.shape[1]:
                    written[row, col] = True
            outputs.append(np.where(written, partial, np.nan))
    return FrameValues(inputs, weight, output, tuple(products), tuple(outputs))


def number(value: float) -> str:
    """Short text for a cell: integers without a decimal point, else 2 significant digits."""
    if value == int(value):
        return str(int(value))
    return f"{value:.2g}"


__all__ = ["FrameValues", "Product", "example_input", "example_kernel", "frame_values", "number"]

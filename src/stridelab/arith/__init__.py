"""Pure-Python stride and padding arithmetic: the single home of every formula in stridelab.

Imports nothing outside the standard library. See ``shared/reference/arithmetic.md``.
"""

from stridelab.arith._check import (
    PADDING_STRINGS,
    PaddingPair,
    PaddingSpec,
    check_int,
    is_int,
    per_axis,
)
from stridelab.arith.equivalent import adaptive_window, block_window, resize_window
from stridelab.arith.explain import explain
from stridelab.arith.field import MisalignedError, ReceptiveField, hull
from stridelab.arith.layers import Layer, Step, parse_layer, parse_layers, receptive_field, trace
from stridelab.arith.sizes import (
    conv_output_size,
    dropped_pixels,
    effective_kernel,
    output_padding_for,
    padding_pairs,
    pool_output_size,
    same_padding,
    spatial_ndim,
    transposed_output_size,
    uncovered_pixels,
    windows,
)
from stridelab.arith.solve import Solution, solve

__all__ = [
    "Layer", "MisalignedError", "PADDING_STRINGS", "PaddingPair", "PaddingSpec", "ReceptiveField",
    "Solution", "Step", "adaptive_window", "block_window", "check_int", "conv_output_size", "dropped_pixels",
    "effective_kernel", "explain", "hull", "is_int", "output_padding_for", "padding_pairs",
    "parse_layer", "parse_layers", "per_axis", "pool_output_size", "receptive_field",
    "resize_window", "same_padding", "solve", "spatial_ndim", "trace", "transposed_output_size",
    "uncovered_pixels", "windows",
]

"""Code export for the arithmetic page's current layer: plain PyTorch with explicit pads,
``stridelab.nn``, TensorFlow / Keras and ONNX node attributes.

Every size and padding written into the code comes from the :class:`LayerCode` the page's answer
was computed with (:mod:`stridelab.arith`); this module only spells them in each framework's
convention. Each snippet builds a one-channel input of the page's size and prints the spatial
output size, so a reader can run it and compare with the page.

Framework conventions used: PyTorch ``F.pad`` lists the *last* axis first ``(left, right, top,
bottom)``; Keras is channels-last and its ``'same'`` is TensorFlow's (odd pixel after); ONNX
``pads`` are ``[x1_begin, x2_begin, ..., x1_end, x2_end]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stridelab import arith
from stridelab.arith import PaddingPair, PaddingSpec

ONNX_OPS = {"conv": "Conv", "pool": "MaxPool", "transposed": "ConvTranspose"}


@dataclass(frozen=True)
class LayerCode:
    """One layer, fully resolved: values per spatial axis, padding as (before, after) pairs.

    ``reach`` is the padding whose floor-mode windows are the layer's windows: ``padding`` plus,
    in ceil mode, the extra amount after that the hanging last window covers.
    """

    mode: str
    input_size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    padding_spec: PaddingSpec
    padding: tuple[PaddingPair, ...]
    reach: tuple[PaddingPair, ...]
    ceil_mode: bool
    output_padding: tuple[int, ...]
    output_size: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.input_size)

    @property
    def symmetric(self) -> bool:
        return all(b == a for b, a in self.padding)


def _v(values: tuple[int, ...]) -> str:
    """An int in 1-D, a tuple in 2-D (how both PyTorch and Keras take per-axis values)."""
    return str(values[0]) if len(values) == 1 else repr(tuple(values))


def _torch_pad(pairs: tuple[PaddingPair, ...]) -> str:
    """``F.pad`` order: last axis first."""
    flat = [v for pair in reversed(pairs) for v in pair]
    return repr(tuple(flat))


def _size_comment(code: LayerCode) -> str:
    return f"# -> {repr(tuple(code.output_size))}, as shown on the page"


def pytorch_code(code: LayerCode) -> str:
    """Plain torch: the layer with symmetric padding, or ``F.pad`` / a crop made explicit."""
    d = code.ndim
    axes = "width" if d == 1 else "height, width"
    lines = ["import torch", "import torch.nn.functional as F", "",
             f"x = torch.randn(1, 1, {', '.join(map(str, code.input_size))})"
             f"  # (batch, channels, {axes})"]
    sym = tuple(b for b, _ in code.padding)
    if code.mode == "conv":
        pad = _v(sym) if code.symmetric else "0"
        if not code.symmetric:
            lines.append(f"x = F.pad(x, {_torch_pad(code.padding)})  # (before, after) per axis, "
                         "last axis first")
        lines.append(f"layer = torch.nn.Conv{d}d(1, 1, kernel_size={_v(code.kernel)}, "
                     f"stride={_v(code.stride)}, padding={pad}, dilation={_v(code.dilation)})")
        lines.append("y = layer(x)")
    elif code.mode == "pool":
        explicit = not code.symmetric
        pads = code.reach if explicit else code.padding
        if explicit:
            lines.append(f"x = F.pad(x, {_torch_pad(pads)}, value=float('-inf'))  # padding "
                         "never wins a max" + (" (ceil mode as extra padding after)"
                                               if code.ceil_mode else ""))
        ceil = code.ceil_mode and not explicit
        lines.append(f"layer = torch.nn.MaxPool{d}d(kernel_size={_v(code.kernel)}, "
                     f"stride={_v(code.stride)}, padding={_v(sym) if not explicit else '0'}, "
                     f"dilation={_v(code.dilation)}, ceil_mode={ceil})")
        lines.append("y = layer(x)")
    else:
        pad = _v(sym) if code.symmetric else "0"
        lines.append(f"layer = torch.nn.ConvTranspose{d}d(1, 1, kernel_size={_v(code.kernel)}, "
                     f"stride={_v(code.stride)}, padding={pad}, "
                     f"output_padding={_v(code.output_padding)}, dilation={_v(code.dilation)})")
        lines.append("y = layer(x)")
        if not code.symmetric:
            crops = ", ".join(f"{b}:y.shape[{2 + axis}] - {a}"
                              for axis, (b, a) in enumerate(code.padding))
            lines.append(f"y = y[:, :, {crops}]  # uneven padding: crop (before, after) per axis")
    lines.append(f"print(tuple(y.shape[2:]))  {_size_comment(code)}")
    return "\n".join(lines) + "\n"


def _snn_padding(code: LayerCode) -> str:
    if isinstance(code.padding_spec, str):
        return repr(code.padding_spec)
    if code.symmetric:
        return _v(tuple(b for b, _ in code.padding))
    return repr(tuple(code.padding))


def stridelab_code(code: LayerCode) -> str:
    """``stridelab.nn`` layers take every padding form (strings, per-axis before/after)."""
    d = code.ndim
    lines = ["import torch", "from stridelab import nn as snn", ""]
    if code.mode == "conv":
        lines.append(f"x = torch.randn(1, 1, {', '.join(map(str, code.input_size))})")
        lines.append(f"layer = snn.Conv{d}d(1, 1, {_v(code.kernel)}, stride={_v(code.stride)}, "
                     f"padding={_snn_padding(code)}, dilation={_v(code.dilation)})")
        lines += ["y = layer(x)", f"print(tuple(y.shape[2:]))  {_size_comment(code)}"]
    elif code.mode == "pool":
        if d == 1:  # stridelab.nn pools are 2-D: a 1-D pool is a 2-D one on a height-1 input
            spelled = code.ceil_mode and not code.symmetric  # see the 2-D case below
            pads = repr(((0, 0), (code.reach if spelled else code.padding)[0]))
            lines.append(f"x = torch.randn(1, 1, 1, {code.input_size[0]})  # height 1: "
                         "stridelab.nn pools are 2-D")
            lines.append(f"layer = snn.MaxPool2d((1, {code.kernel[0]}), stride=(1, "
                         f"{code.stride[0]}), padding={pads}, dilation=(1, {code.dilation[0]}), "
                         f"ceil_mode={code.ceil_mode and not spelled})")
            lines += ["y = layer(x)", f"print(tuple(y.shape[3:]))  {_size_comment(code)}"]
        elif code.ceil_mode and not code.symmetric:
            # snn.MaxPool2d pads unevenly before pooling, so ceil mode would then treat the pad
            # after as input: spell ceil mode as the extra padding its last window reaches.
            lines.append(f"x = torch.randn(1, 1, {', '.join(map(str, code.input_size))})")
            lines.append(f"layer = snn.MaxPool2d({_v(code.kernel)}, stride={_v(code.stride)}, "
                         f"padding={tuple(code.reach)!r}, dilation={_v(code.dilation)})"
                         "  # ceil mode as extra padding after")
            lines += ["y = layer(x)", f"print(tuple(y.shape[2:]))  {_size_comment(code)}"]
        else:
            lines.append(f"x = torch.randn(1, 1, {', '.join(map(str, code.input_size))})")
            lines.append(f"layer = snn.MaxPool2d({_v(code.kernel)}, stride={_v(code.stride)}, "
                         f"padding={_snn_padding(code)}, dilation={_v(code.dilation)}, "
                         f"ceil_mode={code.ceil_mode})")
            lines += ["y = layer(x)", f"print(tuple(y.shape[2:]))  {_size_comment(code)}"]
    else:
        size = _v(code.input_size)
        lines = ["from stridelab import arith", "",
                 "# stridelab.nn has no transposed layer of its own (torch's is exact, see the",
                 "# PyTorch tab); arith predicts its size and the output_padding to undo a conv:",
                 f"size = arith.transposed_output_size({size}, {_v(code.kernel)}, "
                 f"stride={_v(code.stride)}, padding={repr(tuple(code.padding))}, "
                 f"dilation={_v(code.dilation)}, output_padding={_v(code.output_padding)})",
                 f"print(size)  # {_v(code.output_size)}"]
    return "\n".join(lines) + "\n"


def _keras_same(code: LayerCode, pads: tuple[PaddingPair, ...]) -> bool:
    """True when TensorFlow's 'same' gives exactly ``pads`` (and they are not all zero)."""
    if all(p == (0, 0) for p in pads):
        return False
    tf_same = arith.padding_pairs("same", code.input_size, code.kernel, code.stride,
                                  code.dilation)
    return tuple(tf_same) == tuple(pads)


def keras_code(code: LayerCode) -> str:
    """TensorFlow / Keras (channels-last), with the explicit pad it needs when 'same' differs."""
    d = code.ndim
    shape = ", ".join(map(str, code.input_size))
    lines = ["import tensorflow as tf", "",
             f"x = tf.random.normal((1, {shape}, 1))  # channels-last: (batch, "
             f"{'width' if d == 1 else 'height, width'}, channels)"]
    pad_arg = tuple(code.padding[0]) if d == 1 else tuple(code.padding)
    if code.mode == "conv":
        same = _keras_same(code, code.padding)
        if not same and any(p != (0, 0) for p in code.padding):
            lines.append(f"x = tf.keras.layers.ZeroPadding{d}D(padding={pad_arg!r})(x)"
                         "  # 'same' would pad differently: explicit (before, after)")
        if max(code.stride) > 1 and max(code.dilation) > 1:
            lines.append("# note: Keras refuses strides > 1 together with dilation_rate > 1")
        lines.append(f"layer = tf.keras.layers.Conv{d}D(1, {_v(code.kernel)}, "
                     f"strides={_v(code.stride)}, padding={'same' if same else 'valid'!r}, "
                     f"dilation_rate={_v(code.dilation)})")
    elif code.mode == "pool":
        same = _keras_same(code, code.reach)
        if not same and any(p != (0, 0) for p in code.reach):
            spec = [[0, 0]] + [list(p) for p in code.reach] + [[0, 0]]
            lines.append(f"x = tf.pad(x, {spec}, constant_values=float('-inf'))  # explicit "
                         "(before, after)" + (", ceil mode as extra padding after"
                                              if code.ceil_mode else ""))
        if max(code.dilation) > 1:
            lines.append("# note: Keras pooling has no dilation; use tf.nn.pool(..., "
                         f"dilations={list(code.dilation)})")
        lines.append(f"layer = tf.keras.layers.MaxPooling{d}D(pool_size={_v(code.kernel)}, "
                     f"strides={_v(code.stride)}, padding={'same' if same else 'valid'!r})")
    else:
        lines.append(f"layer = tf.keras.layers.Conv{d}DTranspose(1, {_v(code.kernel)}, "
                     f"strides={_v(code.stride)}, padding='valid', "
                     f"output_padding={_v(code.output_padding)}, "
                     f"dilation_rate={_v(code.dilation)})")
        if any(p != (0, 0) for p in code.padding):
            lines += ["y = layer(x)",
                      f"y = tf.keras.layers.Cropping{d}D(cropping={pad_arg!r})(y)"
                      "  # PyTorch's padding: crop (before, after)"]
            lines.append(f"print(tuple(y.shape[1:-1]))  {_size_comment(code)}")
            return "\n".join(lines) + "\n"
    lines += ["y = layer(x)", f"print(tuple(y.shape[1:-1]))  {_size_comment(code)}"]
    return "\n".join(lines) + "\n"


def onnx_attributes(code: LayerCode) -> dict[str, Any]:
    """The ONNX node: op type and attributes (explicit ``pads``; ``ceil_mode`` for pools)."""
    pads = code.padding
    attributes: dict[str, Any] = {
        "kernel_shape": list(code.kernel), "strides": list(code.stride),
        "pads": [b for b, _ in pads] + [a for _, a in pads], "dilations": list(code.dilation),
    }
    if code.mode == "pool":
        attributes["ceil_mode"] = int(code.ceil_mode)
    if code.mode == "transposed":
        attributes["output_padding"] = list(code.output_padding)
    return {"op_type": ONNX_OPS[code.mode], "attributes": attributes}


def onnx_code(code: LayerCode) -> str:
    node = onnx_attributes(code)
    inputs = '["x"]' if code.mode == "pool" else '["x", "w"]'
    attrs = ",\n".join(f"    {k}={v!r}" for k, v in node["attributes"].items())
    lines = ["import onnx", "", "node = onnx.helper.make_node(",
             f"    {node['op_type']!r}, inputs={inputs}, outputs=[\"y\"],", attrs + ",", ")",
             f"# x: [1, 1, {', '.join(map(str, code.input_size))}] -> y: [1, 1, "
             f"{', '.join(map(str, code.output_size))}]"]
    if code.mode == "transposed" and any(o >= s for o, s in zip(code.output_padding, code.stride)):
        lines.append("# note: onnxruntime requires output_padding < stride (PyTorch allows up to "
                     "the dilation)")
    if isinstance(code.padding_spec, str) and code.padding_spec != "valid":
        auto = "SAME_UPPER" if code.padding_spec == "same" else "SAME_LOWER"
        lines.append(f"# padding {code.padding_spec!r}: these pads are what auto_pad={auto!r} "
                     "computes when the effective kernel >= stride")
    return "\n".join(lines) + "\n"


def export_code(code: LayerCode) -> dict[str, Any]:
    """Every export of one layer: ``pytorch``, ``stridelab``, ``keras``, ``onnx`` (text) and
    ``onnx_node`` (op type and attributes as data)."""
    return {"pytorch": pytorch_code(code), "stridelab": stridelab_code(code),
            "keras": keras_code(code), "onnx": onnx_code(code),
            "onnx_node": onnx_attributes(code)}

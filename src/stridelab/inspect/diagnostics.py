"""Findings about stride and padding, each with a severity, the layer, one sentence and a fix.

Codes (stable, used in JSON): ``dropped-pixels``, ``asymmetric-padding``, ``tf-same-mismatch``,
``field-exceeds-input``, ``small-field``, ``aliasing``, ``checkerboard``, ``misaligned``,
``collapsed-map``, ``global-context``, ``approximate-field``, ``unknown-op``, ``untracked``,
``unused-parameters``. Severities: ``warning`` (likely a defect or a silent loss), ``info``
(worth knowing; often deliberate). Misaligned merges use :func:`stridelab.arith.hull`
as the field after the merge (a superset of every branch's region) and say so.
"""

from __future__ import annotations

from fractions import Fraction

from stridelab.arith import conv_output_size, dropped_pixels, same_padding, uncovered_pixels
from stridelab.inspect.capture import INPUT, Group
from stridelab.inspect.geometry import Window
from stridelab.inspect.principal import principal_window
from stridelab.inspect.records import SEVERITIES, Diagnostic, LayerRecord, Report

AXES = {1: ("positions",), 2: ("rows", "columns"), 3: ("slices", "rows", "columns")}


def _x(values: tuple[object, ...] | list[object]) -> str:
    return "x".join(str(v) for v in values)


def _axis_name(ndim: int, axis: int, count: int) -> str:
    name = AXES.get(ndim, ("positions",) * ndim)[axis]
    return name[:-1] if count == 1 else name


def _fold_parent_pad(window: Window, group: Group, groups: dict[int, Group]) -> Window:
    """Count explicit F.pad amounts right before this window as padding, not as pixels."""
    if len(group.parents) != 1 or group.parents[0] not in groups:
        return window
    parent = groups[group.parents[0]]
    pads = [effect.window for _n, effect, _f in parent.effects]
    if not pads or any(p is None or p.kind != "pad" for p in pads):
        return window
    folded = list(window.padding)
    size = list(window.input_size)
    for pad in pads:
        assert pad is not None
        for axis, (b, a) in enumerate(pad.padding):
            if b < 0 or a < 0:
                return window
            folded[axis] = (folded[axis][0] + b, folded[axis][1] + a)
            size[axis] -= b + a
    if any(s < 1 for s in size):
        return window
    return Window(window.kind, window.kernel, window.stride, tuple(folded), window.dilation,
                  tuple(size), window.output_size, window.ceil_mode, window.groups)


def _dropped(record: LayerRecord, window: Window, group: Group,
             groups: dict[int, Group]) -> list[Diagnostic]:
    if window.kind not in ("conv", "maxpool", "avgpool") or window.ceil_mode:
        return []
    window = _fold_parent_pad(window, group, groups)
    skipping = _skipped(record, window)
    if skipping:
        return skipping
    lost = dropped_pixels(window.input_size, window.kernel, window.stride, window.padding,
                          window.dilation)
    lost_t = lost if isinstance(lost, tuple) else (lost,)
    ndim = len(window.input_size)
    parts, fixes = [], []
    for axis, count in enumerate(lost_t):
        if count <= 0:
            continue
        stride, after = window.stride[axis], window.padding[axis][1]
        parts.append(f"the last {count} {_axis_name(ndim, axis, count)}")
        fixes.append(f"{stride - count - after} on axis {axis}")
    if not parts:
        return []
    return [Diagnostic(
        "warning", "dropped-pixels", record.name,
        f"{' and '.join(parts)} of its {_x(window.input_size)} input are never read: no "
        f"{_x(window.kernel)}/{_x(window.stride)} window reaches them.",
        f"pad the end by {', '.join(fixes)} more pixel(s), or pick an input size that leaves "
        f"no remainder (see `stridelab size`).",
    )]


def _skipped(record: LayerRecord, window: Window) -> list[Diagnostic]:
    """A window smaller than its stride skips rows by construction: no padding helps."""
    ndim = len(window.input_size)
    parts = []
    for axis in range(ndim):
        k_eff = window.dilation[axis] * (window.kernel[axis] - 1) + 1
        if k_eff >= window.stride[axis]:
            continue
        size = window.input_size[axis]
        unread = len(uncovered_pixels(size, window.kernel[axis], window.stride[axis],
                                      window.padding[axis], window.dilation[axis]))
        if unread:
            parts.append(f"{unread} of {size} {_axis_name(ndim, axis, size)} "
                         f"({unread / size:.0%})")
    if not parts:
        return []
    return [Diagnostic(
        "warning", "dropped-pixels", record.name,
        f"its {_x(window.kernel)} kernel is smaller than its stride {_x(window.stride)}, so "
        f"{' and '.join(parts)} of its {_x(window.input_size)} input are never read.",
        "use a kernel at least as large as the stride, put an average pool or blur before it "
        "(ResNet-D: avg-pool 2x2 then a 1x1 conv), or fold the pixels into channels first "
        "(space-to-depth, nn.PixelUnshuffle); padding does not help.",
    )]


def _padding(record: LayerRecord, window: Window, group: Group) -> list[Diagnostic]:
    if window.kind not in ("conv", "maxpool", "avgpool", "pad"):
        return []
    uneven = [(a, pair) for a, pair in enumerate(window.padding) if pair[0] != pair[1]]
    if uneven:
        axis, (before, after) = uneven[0]
        return [Diagnostic(
            "info", "asymmetric-padding", record.name,
            f"pads {before} before and {after} after on axis {axis} ('SAME'-style); a "
            f"symmetric PyTorch padding would shift every window by "
            f"{abs(before - after) / 2:g} pixel(s) relative to this.",
            "when porting between TensorFlow/ONNX and PyTorch keep this exact (before, after) "
            "padding (F.pad, then padding=0).",
        )]
    if window.kind == "pad" or not any(s > 1 for s in window.stride) or _low_pass(group):
        return []
    try:
        tf_pairs = same_padding(window.input_size, window.kernel, window.stride, window.dilation)
        same_size = conv_output_size(window.input_size, window.kernel, window.stride, "same",
                                     window.dilation)
        own_size = conv_output_size(window.input_size, window.kernel, window.stride,
                                    window.padding, window.dilation)
    except ValueError:
        return []
    tf_t = tf_pairs if isinstance(tf_pairs[0], tuple) else (tf_pairs,)
    if same_size != own_size or tuple(tf_t) == tuple(window.padding):
        return []
    return [Diagnostic(
        "info", "tf-same-mismatch", record.name,
        f"symmetric padding {_x([p[0] for p in window.padding])} with stride "
        f"{_x(window.stride)} on a {_x(window.input_size)} input: TensorFlow 'SAME' pads "
        f"{' '.join(f'{b}:{a}' for b, a in tf_t)} (before:after) for the same output size, so "
        f"its windows sit one pixel later.",
        "if the weights come from TensorFlow, use F.pad with TF's (before, after) amounts and "
        "padding=0 here.",
    )]


def _low_pass(group: Group | None) -> bool:
    """Average pooling, or a depthwise convolution with fixed (buffer) weights such as a blur."""
    if group is None:
        return False
    if "blur" in group.op.lower() or "blur" in group.name.lower():
        return True
    for _name, effect, fixed in group.effects:
        window = effect.window
        if window is not None and (window.kind in ("avgpool", "adaptive")
                                   or (window.kind == "conv" and fixed)):
            return True
    return False


def _aliasing(record: LayerRecord, window: Window, group: Group,
              groups: dict[int, Group]) -> list[Diagnostic]:
    if window.kind not in ("conv", "maxpool", "crop") or not window.strided:
        return []
    if _low_pass(group):
        return []
    if group.parents and all(p != INPUT and _low_pass(groups.get(p)) for p in group.parents):
        return []
    subsample = any(k < s for k, s in zip(window.kernel, window.stride))
    kind = "pure subsampling (kernel smaller than stride)" if subsample else "stride"
    return [Diagnostic(
        "warning" if subsample else "info", "aliasing", record.name,
        f"{kind} {_x(window.stride)} without a low-pass filter before it: detail finer than "
        f"the new sampling rate aliases, so outputs change under 1-pixel shifts (Zhang 2019).",
        "blur before subsampling (BlurPool, e.g. stridelab.nn downsample='blurpool') or use an "
        "average pool; keep the stride in one place.",
    )]


def _checkerboard(record: LayerRecord, window: Window) -> list[Diagnostic]:
    if window.kind != "transposed":
        return []
    bad = [(k, s) for k, s in zip(window.kernel, window.stride) if s > 1 and k % s]
    if not bad:
        return []
    k, s = bad[0]
    return [Diagnostic(
        "warning", "checkerboard", record.name,
        f"transposed conv kernel {k} is not divisible by its stride {s}, so output pixels get "
        f"unequal numbers of taps (checkerboard artifacts, Odena et al. 2016).",
        f"use kernel {k + s - k % s} (a multiple of {s}), or resize (F.interpolate) followed by "
        f"a stride-1 conv.",
    )]


def _merges(record: LayerRecord, group: Group) -> list[Diagnostic]:
    out = []
    for _name, effect, _fixed in group.effects:
        if effect.misaligned:
            paths = "; ".join(
                f"path {i + 1}: stride {_x(f.stride)}, centre {_x(f.center_offset)}"
                for i, f in enumerate(effect.misaligned))
            out.append(Diagnostic(
                "warning", "misaligned", record.name,
                f"branches meet misaligned ({paths}), so one output unit mixes input regions "
                f"centred at different places; the field shown is their conservative hull "
                f"(size {_x(record.receptive_field.size)}, covers every path).",
                "give every branch the same total stride and centred padding ((k-1)/2 with odd "
                "kernels), or crop/pad one branch so the centres match.",
            ))
        if effect.broadcast and not any(d.code == "global-context" for d in out):
            out.append(Diagnostic(
                "info", "global-context", record.name,
                "a global (1x1) input is broadcast over the map here (a gate such as "
                "squeeze-excitation); the field shown follows the map's own path, and the layer "
                "is marked global context: every unit also depends on the whole input.",
                "nothing to fix if the global gate is intended.",
            ))
        if effect.unknown:
            out.append(Diagnostic(
                "warning", "unknown-op", record.name,
                f"stridelab does not know how '{_name}' maps positions and it changes the "
                f"spatial shape; the field after it is taken as the whole feature map.",
                "treat fields after this layer as an upper bound; report the op to stridelab.",
            ))
        if effect.window is not None and not effect.window.exact:
            how = ("a window that contains every read, at the exact fractional stride of the "
                   "size ratio")
            out.append(Diagnostic(
                "info", "approximate-field", record.name,
                f"{effect.window.kind} from {_x(effect.window.input_size)} to "
                f"{_x(effect.window.output_size)} has no whole-number ratio (or uses "
                f"align_corners), so its field is {how}.",
                "use sizes that divide evenly for exact fields.",
            ))
    if group.lost or group.errors:
        detail = group.errors[0] if group.errors else "an operator wrote into a new tensor"
        out.append(Diagnostic(
            "warning", "untracked", record.name,
            f"the field could not be followed exactly through this layer ({detail}).",
            "treat fields after this layer with caution; report the op to stridelab.",
        ))
    return out


def _pooled_to_one(record: LayerRecord, group: Group) -> bool:
    """A global pooling (or mean) whose output map is 1 x ... x 1."""
    window = principal_window(group)
    pooled = ((window is not None and window.kind in ("global", "adaptive"))
              or "pool" in record.op.lower() or record.op == "mean")
    return pooled and all(s == 1 for s in record.output_shape[2:])


def head_index(report: Report, groups: list[Group]) -> int | None:
    """The last spatial layer that is not a global pooling: what a classifier head reads."""
    head = None
    for index, (record, group) in enumerate(zip(report.layers, groups)):
        if record.spatial and not _pooled_to_one(record, group):
            head = index
    return head


def _field_size(report: Report, groups: list[Group], fraction: float) -> list[Diagnostic]:
    spatial_in = report.input_size[1:]
    out = []
    for record, group in zip(report.layers, groups):
        if not record.spatial or record.global_context or _pooled_to_one(record, group):
            continue
        over = [a for a, r in enumerate(record.receptive_field.size) if r > spatial_in[a]]
        if over:
            a = over[0]
            out.append(Diagnostic(
                "info", "field-exceeds-input", record.name,
                f"receptive field {_x(record.receptive_field.size)} is larger than the "
                f"{_x(spatial_in)} input from here on; the extra reach only sees padding.",
                f"fine for classification; for dense prediction at {spatial_in[a]} pixels "
                f"stride less or stop earlier.",
            ))
            break
    head = head_index(report, groups)
    if head is None:
        return out
    record = report.layers[head]
    short = [] if record.global_context else [
        a for a, r in enumerate(record.receptive_field.size) if r < fraction * spatial_in[a]]
    if short:
        a = short[0]
        share = Fraction(record.receptive_field.size[a]) / spatial_in[a]
        out.append(Diagnostic(
            "warning", "small-field", record.name,
            f"the head's receptive field {_x(record.receptive_field.size)} covers "
            f"{float(share):.0%} of the input on axis {a}, below the stated {fraction:.0%}.",
            "add stride or dilation earlier, or more layers, so each output unit sees enough "
            "context.",
        ))
    for rec, group in zip(report.layers[:head], groups[:head]):
        window = principal_window(group)
        if (window is not None and rec.spatial and window.kind not in ("global", "adaptive")
                and any(o <= 1 < i for i, o in zip(window.input_size, window.output_size))):
            out.append(Diagnostic(
                "warning", "collapsed-map", rec.name,
                f"the feature map shrinks to {_x(rec.output_shape[2:])} here, before the head "
                f"({report.layers[head].name}); later windows see mostly padding.",
                "use a larger input, or remove a stride-2 stage for this input size.",
            ))
            break
    return out


def diagnose(report: Report, groups: list[Group], fraction: float,
             unused_params: int = 0) -> list[Diagnostic]:
    """All findings for ``report``: warnings first, then infos, each in execution order."""
    by_index = {group.index: group for group in groups}
    found: list[Diagnostic] = []
    for record, group in zip(report.layers, groups):
        window = principal_window(group)
        if window is not None:
            found += _dropped(record, window, group, by_index)
            found += _padding(record, window, group)
            found += _aliasing(record, window, group, by_index)
            found += _checkerboard(record, window)
        found += _merges(record, group)
    gates = [d for d in found if d.code == "global-context"]
    if len(gates) > 1:  # one note per model: SE / ECA blocks repeat in every stage
        found = [d for d in found if d.code != "global-context" or d is gates[0]]
        first = gates[0]
        found[found.index(first)] = Diagnostic(
            first.severity, first.code, first.layer,
            f"{first.message} {len(gates) - 1} more layer(s) are global gates too "
            f"(the last: {gates[-1].layer}).", first.fix)
    found += _field_size(report, groups, fraction)
    if unused_params > 0:
        found.append(Diagnostic(
            "info", "unused-parameters", "model",
            f"{unused_params} parameters take no part in the eval-mode forward pass (e.g. "
            f"training-only auxiliary heads; counted in the total, not in any layer).",
            "remove unused modules, or check that forward() calls every branch you expect.",
        ))
    order = {name: i for i, name in enumerate(r.name for r in report.layers)}
    return sorted(found, key=lambda d: (SEVERITIES.index(d.severity), order.get(d.layer, -1)))

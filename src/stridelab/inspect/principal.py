"""The window a report row shows for a group of operators (one module or function call)."""

from __future__ import annotations

from typing import Any

from stridelab.inspect.capture import Group
from stridelab.inspect.geometry import Window

MAIN_WINDOWS = ("conv", "transposed", "maxpool", "avgpool", "adaptive", "resize", "global",
                "rearrange")


def _drop_lifted(window: Window, ndim: int) -> Window:
    """Remove the singleton axis torch inserts to run a 1-D window as 2-D."""
    while len(window.kernel) > ndim:
        axis = next((a for a in range(len(window.kernel)) if window.input_size[a] == 1
                     and window.kernel[a] == 1), None)
        if axis is None:
            return window
        keep = [a for a in range(len(window.kernel)) if a != axis]

        def pick(values: tuple[Any, ...], keep: list[int] = keep) -> tuple[Any, ...]:
            return tuple(values[a] for a in keep)

        window = Window(window.kind, pick(window.kernel), pick(window.stride),
                        pick(window.padding), pick(window.dilation), pick(window.input_size),
                        pick(window.output_size), window.ceil_mode, window.groups,
                        window.exact, None if window.upsample is None else pick(window.upsample))
    return window


def principal_window(group: Group) -> Window | None:
    window = _principal_window(group)
    if window is not None and group.out_info is not None:
        return _drop_lifted(window, group.out_info.field.ndim)
    return window


def _principal_window(group: Group) -> Window | None:
    """The window a row shows: its first conv / pool / resize; padding ops before it fold in."""
    pads: list[Window] = []
    for _name, effect, _fixed in group.effects:
        window = effect.window
        if window is None:
            continue
        if window.kind == "pad":
            pads.append(window)
        elif window.kind in MAIN_WINDOWS:
            if pads and window.kind != "transposed":
                folded = list(window.padding)
                for pad in pads:
                    folded = [(b + pb, a + pa) for (b, a), (pb, pa) in zip(folded, pad.padding)]
                return Window(window.kind, window.kernel, window.stride, tuple(folded),
                              window.dilation, pads[0].input_size, window.output_size,
                              window.ceil_mode, window.groups, window.exact, window.upsample)
            return window
    return pads[0] if pads else None

"""Recurrent modules (``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU``) on meta tensors, without their steps.

On meta tensors a recurrent module is pure bookkeeping: its outputs' shapes follow from its
configuration, and its cost from the shapes. Running it anyway costs hundreds of operators per
call (one per gate product and step; Sequencer2d-L runs 72 LSTMs, 44,000 operators), so the
inspector asks this module instead.

Cost (MACs, multiply-accumulates; FLOPs = 2 x MACs), counted as PyTorch's ``FlopCounterMode``
counts the ATen decomposition of these modules, which counts matrix products only: per layer
``l`` and direction, over ``T`` steps and ``N`` sequences, with ``G`` gates (LSTM 4, GRU 3, RNN 1),
hidden size ``H``, state size ``H_out`` (``proj_size`` when set, else ``H``), and input size
``I_l`` (the module's ``input_size`` for layer 0, ``D * H_out`` above it, ``D`` directions):

    MACs = T * N * G * H * (I_l + H_out)  [+ T * N * H * H_out for an LSTM's projection]

(biases and gate non-linearities are element-wise and count no FLOPs, as in ``FlopCounterMode``).
"""

from __future__ import annotations

from typing import Any

import torch

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _sizes(module: torch.nn.RNNBase, source: torch.Tensor) -> tuple[int, int, int]:
    """``(steps, sequences, directions)`` of ``source`` (``(N, L, I)`` / ``(L, N, I)`` / ``(L, I)``)."""
    directions = 2 if module.bidirectional else 1
    if source.dim() == 2:  # unbatched
        return source.shape[0], 1, directions
    if module.batch_first:
        return source.shape[1], source.shape[0], directions
    return source.shape[0], source.shape[1], directions


def recurrent_macs(module: torch.nn.RNNBase, source: torch.Tensor) -> int:
    """MACs of one call of ``module`` on ``source`` (the formula of the module docstring)."""
    gates = _GATES[module.mode]
    steps, batch, directions = _sizes(module, source)
    hidden = module.hidden_size
    state = module.proj_size or hidden
    total = 0
    for layer in range(module.num_layers):
        width = module.input_size if layer == 0 else directions * state
        per_step = gates * hidden * (width + state)
        if module.proj_size:
            per_step += hidden * state
        total += directions * steps * batch * per_step
    return total


def recurrent_outputs(module: torch.nn.RNNBase, source: torch.Tensor) -> Any:
    """Empty tensors shaped as ``module(source)`` returns them, on ``source``'s device:
    ``(output, h_n)``, or ``(output, (h_n, c_n))`` for an LSTM."""
    steps, batch, directions = _sizes(module, source)
    state = module.proj_size or module.hidden_size
    batched = source.dim() == 3

    def make(*shape: int) -> torch.Tensor:
        return torch.empty(shape, dtype=source.dtype, device=source.device)

    if not batched:
        output = make(steps, directions * state)
    elif module.batch_first:
        output = make(batch, steps, directions * state)
    else:
        output = make(steps, batch, directions * state)
    layers = directions * module.num_layers
    h_n = make(layers, batch, state) if batched else make(layers, state)
    if module.mode != "LSTM":
        return output, h_n
    cells = module.hidden_size
    c_n = make(layers, batch, cells) if batched else make(layers, cells)
    return output, (h_n, c_n)

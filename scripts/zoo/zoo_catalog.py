"""Which models the zoo inspects, how each is built, and the fixed autograd sample.

Every entry is a spec string understood by :func:`stridelab.inspect.load_model`, optionally with
a suffix saying what part of the model is inspected:

* ``timm:NAME`` for every name of ``timm.list_models()``, at its ``pretrained_cfg`` input size;
* ``torchvision:NAME`` for every name of ``torchvision.models.list_models()``: classification
  (and the float builds of the quantization models: ``quantize=True`` needs published weights),
  segmentation and video models whole;
* ``torchvision:NAME/backbone`` for the 12 detection models: their heads build anchors, run NMS
  and pick proposals from tensor *values* (no meta run, no receptive field in the conv sense), so
  the zoo inspects the convolutional backbone (with FPN where the model has one) at the
  detector's input size;
* ``torchvision:NAME/two-frames`` for RAFT: its forward takes two images, so a wrapper splits a
  6-channel input into the two frames (FlyingChairs crop, 368 x 496).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

OPTICAL_FLOW_INPUT = (6, 368, 496)

# Convolutional models without global operators (no attention, SE / ECA gates, global
# response norm), checked against autograd at their default input size. Fixed, so runs compare.
FIELD_SAMPLE = (
    "torchvision:alexnet", "torchvision:convnext_tiny", "torchvision:googlenet",
    "torchvision:inception_v3", "torchvision:mnasnet0_5", "torchvision:mobilenet_v2",
    "torchvision:quantized_resnet18", "torchvision:regnet_x_400mf", "torchvision:resnet18",
    "torchvision:resnet50", "torchvision:shufflenet_v2_x0_5", "torchvision:squeezenet1_0",
    "torchvision:squeezenet1_1", "torchvision:vgg11",
    "timm:convnext_atto", "timm:cs3darknet_s", "timm:cspresnet50", "timm:densenet121",
    "timm:dla34", "timm:dla46_c", "timm:dla60x_c", "timm:efficientnet_lite0", "timm:fastvit_t8",
    "timm:fbnetc_100", "timm:gernet_s", "timm:hrnet_w18_small", "timm:inception_v4",
    "timm:legacy_xception", "timm:mnasnet_100", "timm:mobilenetv1_100", "timm:mobilenetv2_050",
    "timm:mobileone_s0", "timm:nf_resnet26", "timm:regnetx_002", "timm:repvgg_a0",
    "timm:res2net50_26w_4s", "timm:resnet10t", "timm:resnet18d", "timm:resnet26",
    "timm:resnet50d", "timm:resnext26ts", "timm:selecsls42b", "timm:spnasnet_100",
    "timm:vgg11",
)


@dataclass(frozen=True)
class Entry:
    """One zoo model: its spec (with an optional ``/part`` suffix) and whether autograd checks
    its fields."""

    spec: str
    field_check: bool = False

    @property
    def source(self) -> str:
        return self.spec.split(":", 1)[0]


def zoo_entries(only: str | None = None) -> list[Entry]:
    """Every torchvision model, then every timm model (``only``: ``timm`` or ``torchvision``)."""
    specs: list[str] = []
    if only in (None, "torchvision"):
        specs += _torchvision_specs()
    if only in (None, "timm"):
        specs += _timm_specs()
    sample = set(FIELD_SAMPLE)
    return [Entry(spec, spec in sample) for spec in specs]


def _timm_specs() -> list[str]:
    """Every timm name; the first model of each timm module (architecture family) first, so a
    partial run already covers every family."""
    import timm
    from timm.models import list_modules

    firsts = [names[0] for names in (timm.list_models(module=m) for m in list_modules()) if names]
    rest = [name for name in timm.list_models() if name not in set(firsts)]
    return [f"timm:{name}" for name in firsts + rest]


def _torchvision_specs() -> list[str]:
    from torchvision import models

    detection = set(models.list_models(module=models.detection))
    flow = set(models.list_models(module=models.optical_flow))
    specs = []
    for name in models.list_models():
        suffix = "/backbone" if name in detection else "/two-frames" if name in flow else ""
        specs.append(f"torchvision:{name}{suffix}")
    return specs


class TwoFrames(torch.nn.Module):
    """RAFT on one tensor: channels 0-2 are the first frame, 3-5 the second."""

    def __init__(self, flow: torch.nn.Module) -> None:
        super().__init__()
        self.flow = flow

    def forward(self, frames: torch.Tensor) -> object:
        first, second = frames.chunk(2, dim=1)
        return self.flow(first, second)


def build(spec: str, device: str) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """The module the zoo inspects for ``spec`` and its input size, built on ``device``.

    ``device="meta"`` builds without memory or initialisation time; models whose constructor
    reads tensor values (``linspace(...).tolist()``) fall back to the CPU (the caller decides).
    """
    from stridelab.inspect.registry import load_model

    name, _, part = spec.partition("/")
    with torch.device(device):
        loaded = load_model(name, allow_code=False)
    model, size = loaded.model, loaded.input_size
    if part == "backbone":
        model = model.backbone
    elif part == "two-frames":
        model, size = TwoFrames(model), OPTICAL_FLOW_INPUT
    elif part:
        raise ValueError(f"unknown zoo part {part!r} in {spec!r}")
    if size is None:
        raise ValueError(f"{spec}: no default input size")
    return model, size

"""Pictures of stride: sliding-kernel animations, receptive-field overlays, size pyramids.

* :func:`animate` (Pillow): a (transposed) convolution step by step, GIF or PNG strip; the frame
  content is plain data from :func:`animation_frames`, geometry from :mod:`stridelab.arith`.
* :func:`receptive_field_overlay` (Pillow): the region one unit of a layer sees, over an image.
* :func:`size_pyramid` (matplotlib, Agg): feature-map size and channels per stage.
* :func:`effective_field_plot` / :func:`effective_field_overlay` (matplotlib, Agg): the
  effective receptive field (Luo et al. 2016) beside the theoretical one, and on a photo.

Importing this package loads neither torch nor matplotlib; the functions that need them import
them when called.
"""

from stridelab.viz.animate import Animation, animate, frame_strip
from stridelab.viz.erf import effective_field_overlay, effective_field_plot
from stridelab.viz.geometry import ConvSpec, Frame, FramePlan, animation_frames, conv_spec
from stridelab.viz.overlay import OverlayGeometry, overlay_geometry, receptive_field_overlay
from stridelab.viz.pyramid import PyramidStage, pyramid_stages, size_pyramid

__all__ = [
    "Animation", "ConvSpec", "Frame", "FramePlan", "animate", "animation_frames", "conv_spec",
    "frame_strip", "OverlayGeometry", "overlay_geometry", "receptive_field_overlay",
    "PyramidStage", "pyramid_stages", "size_pyramid", "effective_field_overlay",
    "effective_field_plot",
]

"""Draw a :class:`~stridelab.viz.geometry.FramePlan` with Pillow (no matplotlib, no torch).

Each frame shows the input grid (left) and the output grid (right). Cell colours (RGB, also in
:data:`COLORS`): real cells white, padding / cropped cells grey, kernel taps orange inside an
outline of the kernel's span (so dilation gaps show as un-highlighted cells inside it), the output
cell being written blue and earlier outputs pale blue, dropped border pixels red with a cross,
other never-read pixels (gaps, dilation holes) pale red. Transposed convolution: the current input
cell orange, the patch it writes blue, earlier writes in blues that darken with the number of
inputs that wrote the cell (the overlap that causes checkerboard artefacts).

Frames are quantised to a fixed palette that contains every fill colour exactly, so a decoded GIF
has these exact RGB values at every cell (see :meth:`Layout.probe`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import islice

from PIL import Image, ImageDraw, ImageFont

from stridelab.viz.geometry import Cell, FramePlan
from stridelab.viz.values import FrameValues, number

RGB = tuple[int, int, int]

COLORS: dict[str, RGB] = {
    "background": (255, 255, 255),
    "cell": (255, 255, 255),
    "grid": (150, 150, 150),
    "text": (20, 20, 20),
    "muted": (110, 110, 110),
    "padding": (205, 205, 205),
    "tap": (255, 160, 60),
    "footprint": (200, 90, 0),
    "current": (45, 110, 220),
    "written": (195, 215, 250),
    "written2": (150, 185, 245),
    "written3": (110, 155, 235),
    "dropped": (240, 140, 140),
    "unread": (252, 222, 222),
    "done_input": (255, 228, 195),
    "cross": (170, 30, 30),
    "white_text": (255, 255, 255),
}

MARGIN = 14
TITLE_SIZE = 13


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def choose_cell_size(plan: FramePlan, values: bool) -> int:
    """Pixels per cell: large for small grids, at least 34 with ``values`` (two lines of text)."""
    cells = max(len(plan.input_cols) + len(plan.output_cols),
                len(plan.input_rows), len(plan.output_rows))
    size = max(10, min(44, 640 // max(cells, 1)))
    if values:
        if size < 34:
            raise ValueError("values: the grids are too large to print numbers in the cells; "
                             "use an input of at most 8x8 with --values (or drop --values)")
        size = max(size, 34)
    return size


@dataclass(frozen=True)
class Layout:
    """Pixel geometry of every frame: where each input / output cell is drawn."""

    plan: FramePlan
    cell: int
    input_origin: tuple[int, int]
    output_origin: tuple[int, int]
    width: int
    height: int
    text_top: int

    def cell_box(self, grid: str, cell: Cell) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of ``cell`` of ``grid`` ("input" or "output"), grid lines included."""
        if grid == "input":
            (ox, oy), rows, cols = self.input_origin, self.plan.input_rows, self.plan.input_cols
        elif grid == "output":
            (ox, oy), rows, cols = self.output_origin, self.plan.output_rows, self.plan.output_cols
        else:
            raise ValueError(f"grid must be 'input' or 'output', got {grid!r}")
        row, col = cell
        if row not in rows or col not in cols:
            raise ValueError(f"cell {cell} is outside the drawn {grid} grid")
        x0 = ox + (col - cols.start) * self.cell
        y0 = oy + (row - rows.start) * self.cell
        return x0, y0, x0 + self.cell, y0 + self.cell

    def probe(self, grid: str, cell: Cell) -> tuple[int, int]:
        """A pixel inside ``cell`` that only its fill colour covers (clear of text and marks)."""
        x0, y0, _, _ = self.cell_box(grid, cell)
        return x0 + 3, y0 + 3


def make_layout(plan: FramePlan, cell: int, text_lines: int, min_width: int = 560) -> Layout:
    label = 18  # index labels / panel titles above and left of each grid
    # title + step lines, then the grid title (drawn 34 px above the grid) and index labels
    top = MARGIN + 2 * (TITLE_SIZE + 5) + 34 + 6
    in_w, in_h = len(plan.input_cols) * cell, len(plan.input_rows) * cell
    out_w, out_h = len(plan.output_cols) * cell, len(plan.output_rows) * cell
    input_origin = (MARGIN + label, top)
    gap = max(48, cell + 16)
    output_origin = (input_origin[0] + in_w + gap + label, top)
    grids_bottom = top + max(in_h, out_h)
    width = max(output_origin[0] + out_w + MARGIN, min_width)
    height = grids_bottom + 10 + text_lines * (TITLE_SIZE + 6) + 2 * 20 + MARGIN
    return Layout(plan, cell, input_origin, output_origin, width, height, grids_bottom + 10)


def _overlaps(plan: FramePlan) -> list[Counter[Cell]]:
    """For a transposed plan: how many inputs have written each output cell, after each frame."""
    counts: Counter[Cell] = Counter()
    history = []
    for frame in plan.frames:
        counts.update(frame.output_cells)
        history.append(counts.copy())
    return history


def _legend(plan: FramePlan) -> list[tuple[str, str]]:
    if plan.spec.transposed:
        items = [("tap", "input being scattered"), ("current", "patch it writes (x kernel)"),
                 ("written", "written by 1 input"), ("written2", "by 2"), ("written3", "by 3+")]
        if plan.output_cropped:
            items.append(("padding", "cropped by padding"))
        if plan.unwritten:
            items.append(("unread", "written by no input"))
        return items
    items = [("tap", "kernel taps"), ("current", "output being written")]
    if plan.input_padding:
        items.insert(0, ("padding", "padding"))
    if plan.dropped:
        items.append(("dropped", "dropped (no window reaches)"))
    if plan.unread - plan.dropped:
        items.append(("unread", "never read (gap)"))
    return items


class Renderer:
    """Draws frame ``n`` of a plan; ``values`` adds the numbers of the example."""

    def __init__(self, plan: FramePlan, values: FrameValues | None = None,
                 cell: int | None = None) -> None:
        self.plan = plan
        self.values = values
        size = cell if cell is not None else choose_cell_size(plan, values is not None)
        self.title_font = _font(TITLE_SIZE)
        probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        title_width = int(probe.textlength(plan.spec.describe(), font=self.title_font))
        self.layout = make_layout(plan, size, 2, max(560, title_width + 2 * MARGIN))
        self.cell_font = _font(max(9, int(size * 0.4)))
        self.small_font = _font(max(8, int(size * 0.28)))
        self.overlaps = _overlaps(plan) if plan.spec.transposed else []

    # -- pieces ---------------------------------------------------------------------------
    def _text_center(self, draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str,
                     font: ImageFont.FreeTypeFont | ImageFont.ImageFont, color: RGB) -> None:
        draw.text(xy, text, fill=color, font=font, anchor="mm")

    def _fill(self, draw: ImageDraw.ImageDraw, grid: str, cell: Cell, color: str) -> None:
        draw.rectangle(self.layout.cell_box(grid, cell), fill=COLORS[color],
                       outline=COLORS["grid"], width=1)

    def _cross(self, draw: ImageDraw.ImageDraw, grid: str, cell: Cell) -> None:
        x0, y0, x1, y1 = self.layout.cell_box(grid, cell)
        inset = max(3, self.layout.cell // 4)
        draw.line((x0 + inset, y0 + inset, x1 - inset, y1 - inset), fill=COLORS["cross"], width=2)
        draw.line((x0 + inset, y1 - inset, x1 - inset, y0 + inset), fill=COLORS["cross"], width=2)

    def _outline(self, draw: ImageDraw.ImageDraw, grid: str, cells: tuple[Cell, ...],
                 color: str) -> None:
        rows = [r for r, _ in cells]
        cols = [c for _, c in cells]
        drawn_rows = self.plan.input_rows if grid == "input" else self.plan.output_rows
        drawn_cols = self.plan.input_cols if grid == "input" else self.plan.output_cols
        top = max(min(rows), drawn_rows.start)
        left = max(min(cols), drawn_cols.start)
        bottom = min(max(rows), drawn_rows.stop - 1)
        right = min(max(cols), drawn_cols.stop - 1)
        x0, y0, _, _ = self.layout.cell_box(grid, (top, left))
        _, _, x1, y1 = self.layout.cell_box(grid, (bottom, right))
        draw.rectangle((x0 - 1, y0 - 1, x1 + 1, y1 + 1), outline=COLORS[color], width=3)

    def _labels(self, draw: ImageDraw.ImageDraw) -> None:
        plan, lay = self.plan, self.layout
        spec = plan.spec
        for grid, rows, cols, size in (
            ("input", plan.input_rows, plan.input_cols, spec.input_size),
            ("output", plan.output_rows, plan.output_cols, spec.output_size),
        ):
            if lay.cell >= 16:
                for col in range(size[1]):
                    x0, y0, x1, _ = lay.cell_box(grid, (rows.start, col))
                    self._text_center(draw, ((x0 + x1) / 2, y0 - 8), str(col), self.small_font,
                                      COLORS["muted"])
                for row in range(size[0]):
                    x0, y0, _, y1 = lay.cell_box(grid, (row, cols.start))
                    self._text_center(draw, (x0 - 9, (y0 + y1) / 2), str(row), self.small_font,
                                      COLORS["muted"])
            x0, y0, _, _ = lay.cell_box(grid, (rows.start, cols.start))
            name = "input" if grid == "input" else "output"
            extra = {"input": " (grey: padding)" if plan.input_padding else "",
                     "output": " (grey: cropped)" if plan.output_cropped else ""}[grid]
            draw.text((x0, y0 - 34), f"{name} {size[0]}x{size[1]}{extra}", fill=COLORS["text"],
                      font=self.title_font)

    def _legend(self, draw: ImageDraw.ImageDraw, top: int) -> None:
        x, y = MARGIN, top
        for color, label in _legend(self.plan):
            width = 16 + int(draw.textlength(label, font=self.title_font)) + 18
            if x + width > self.layout.width - MARGIN:
                x, y = MARGIN, y + 20
            draw.rectangle((x, y + 2, x + 12, y + 14), fill=COLORS[color], outline=COLORS["grid"])
            draw.text((x + 16, y), label, fill=COLORS["text"], font=self.title_font)
            x += width

    # -- frames -------------------------------------------------------------------------
    def frame(self, step: int) -> Image.Image:
        """Frame ``step`` as an RGB image."""
        plan, lay = self.plan, self.layout
        frame = plan.frames[step]
        image = Image.new("RGB", (lay.width, lay.height), COLORS["background"])
        draw = ImageDraw.Draw(image)
        draw.text((MARGIN, MARGIN), plan.spec.describe(), fill=COLORS["text"],
                  font=self.title_font)
        self._labels(draw)
        if plan.spec.transposed:
            self._transposed_grids(draw, step)
        else:
            self._conv_grids(draw, step)
        caption = self._caption(step)
        draw.text((MARGIN, MARGIN + TITLE_SIZE + 5),
                  f"step {step + 1} / {len(plan.frames)}", fill=COLORS["muted"],
                  font=self.title_font)
        draw.text((MARGIN, lay.text_top), caption, fill=COLORS["text"], font=self.title_font)
        self._legend(draw, lay.text_top + 2 * (TITLE_SIZE + 6))
        del frame
        return image

    def _cell_text(self, draw: ImageDraw.ImageDraw, grid: str, cell: Cell, text: str,
                   color: str = "text", sub: str | None = None) -> None:
        x0, y0, x1, y1 = self.layout.cell_box(grid, cell)
        cx = (x0 + x1) / 2
        cy = (y0 + y1) / 2 if sub is None else y0 + (y1 - y0) * 0.38
        self._text_center(draw, (cx, cy), text, self.cell_font, COLORS[color])
        if sub is not None:
            self._text_center(draw, (cx, y0 + (y1 - y0) * 0.78), sub, self.small_font,
                              COLORS[color])

    def _conv_grids(self, draw: ImageDraw.ImageDraw, step: int) -> None:
        plan, vals = self.plan, self.values
        frame = plan.frames[step]
        taps = dict(zip(frame.input_cells, frame.taps))
        for row in plan.input_rows:
            for col in plan.input_cols:
                cell = (row, col)
                color = ("tap" if cell in taps else "padding" if cell in plan.input_padding
                         else "dropped" if cell in plan.dropped
                         else "unread" if cell in plan.unread else "cell")
                self._fill(draw, "input", cell, color)
                if cell in plan.dropped:
                    self._cross(draw, "input", cell)
                if vals is not None:
                    padded = cell in plan.input_padding
                    value = "0" if padded else number(vals.inputs[row, col])
                    sub = f"x{number(vals.weight[taps[cell]])}" if cell in taps else None
                    self._cell_text(draw, "input", cell, value, "muted" if padded else "text",
                                    sub)
        self._outline(draw, "input", frame.input_cells, "footprint")
        current = frame.output_cells[0]
        done = {f.output_cells[0] for f in plan.frames[:step]}
        for row in plan.output_rows:
            for col in plan.output_cols:
                cell = (row, col)
                color = "current" if cell == current else "written" if cell in done else "cell"
                self._fill(draw, "output", cell, color)
                if vals is not None and (cell == current or cell in done):
                    self._cell_text(draw, "output", cell, number(vals.outputs[step][row, col]),
                                    "white_text" if cell == current else "text")

    def _transposed_grids(self, draw: ImageDraw.ImageDraw, step: int) -> None:
        plan, vals = self.plan, self.values
        frame = plan.frames[step]
        current_in = frame.input_cells[0]
        done_in = {f.input_cells[0] for f in plan.frames[:step]}
        for row in plan.input_rows:
            for col in plan.input_cols:
                cell = (row, col)
                color = "tap" if cell == current_in else "done_input" if cell in done_in else "cell"
                self._fill(draw, "input", cell, color)
                if vals is not None:
                    self._cell_text(draw, "input", cell, number(vals.inputs[row, col]))
        before = self.overlaps[step - 1] if step > 0 else Counter()
        patch = dict(zip(frame.output_cells, frame.taps))
        shades = ("cell", "written", "written2", "written3")
        for row in plan.output_rows:
            for col in plan.output_cols:
                cell = (row, col)
                if cell in patch:
                    color = "current"
                elif cell in plan.output_cropped:
                    color = "padding"
                elif cell in plan.unwritten:
                    color = "unread"
                else:
                    color = shades[min(before[cell], 3)]
                self._fill(draw, "output", cell, color)
                real = cell not in plan.output_cropped
                if vals is not None and real and cell not in plan.unwritten:
                    value = vals.outputs[step][row, col]
                    if value == value:  # not nan: written by now
                        sub = f"+{number(vals.weight[patch[cell]] * vals.inputs[current_in])}" \
                            if cell in patch else None
                        self._cell_text(draw, "output", cell, number(value),
                                        "white_text" if cell in patch else "text", sub)
        self._outline(draw, "output", frame.output_cells, "footprint")

    def _caption(self, step: int) -> str:
        plan, vals = self.plan, self.values
        frame = plan.frames[step]
        if plan.spec.transposed:
            (row, col), = frame.input_cells
            text = f"input ({row},{col}) adds itself x kernel to output rows " \
                   f"{frame.output_cells[0][0]}..{frame.output_cells[-1][0]}, cols " \
                   f"{frame.output_cells[0][1]}..{frame.output_cells[-1][1]}"
            if vals is not None:
                text += f"  (value {number(vals.inputs[row, col])})"
            return text
        (row, col), = frame.output_cells
        if vals is None:
            first, last = frame.input_cells[0], frame.input_cells[-1]
            return (f"out[{row},{col}] reads input rows {first[0]}..{last[0]}, "
                    f"cols {first[1]}..{last[1]}")
        terms = [f"{number(p.value)}*{number(p.weight)}" for p in vals.products[step]]
        shown = " + ".join(islice(terms, 12)) + (" + ..." if len(terms) > 12 else "")
        return f"out[{row},{col}] = {shown} = {number(vals.outputs[step][row, col])}"


def palette_image() -> Image.Image:
    """A 'P' image whose palette holds every colour of :data:`COLORS` exactly, plus blends
    toward black and white for anti-aliased text."""
    entries: list[RGB] = []
    for color in COLORS.values():
        for toward, amounts in (((0, 0, 0), (0.0, 0.3, 0.55, 0.8)), ((255, 255, 255), (0.4, 0.7))):
            for amount in amounts:
                blend = tuple(round(c + (t - c) * amount) for c, t in zip(color, toward))
                if blend not in entries:
                    entries.append(blend)  # type: ignore[arg-type]
    flat = [v for rgb in entries[:256] for v in rgb]
    flat += [0] * (768 - len(flat))
    pal = Image.new("P", (1, 1))
    pal.putpalette(flat)
    return pal


def to_palette(image: Image.Image) -> Image.Image:
    """Quantise an RGB frame to :func:`palette_image` without dithering (fills stay exact)."""
    return image.quantize(palette=palette_image(), dither=Image.Dither.NONE)


__all__ = ["COLORS", "Layout", "Renderer", "choose_cell_size", "palette_image", "to_palette"]

"""Per-unit reach through the graph: the first and last input position a map unit can see.

Distill fields (:class:`~stridelab.arith.ReceptiveField`) are linear in the unit index: unit
``u`` sees ``[u * S - P, u * S - P + r - 1]``. Three things make a real unit see less, and only
the graph knows them:

* a map that drops pixels at its end (stride not dividing the size) leaves input positions
  beyond its last unit's field unreachable, but only on the paths through that map (a ``1x1/2``
  shortcut that never reads the last row does not bound the ``3x3/2`` main path beside it);
* a nearest upsampling by a whole ``f`` reads one unit, ``floor(u / f)``, which the linear
  field (stride ``S / f``) brackets by up to ``(f - 1) / f * S`` pixels on one side, depending on
  the unit's phase ``u mod f`` (HRNet's fuse layers);
* an element-wise merge (``add``, ``mul``) of branches with different fields reads the *same*
  unit of each branch; the merged field is the largest branch's, and inverting it through a
  smaller branch's field would credit that branch with more units than it gives.

So the reach follows each row's own inputs: the map rows feeding it (rows in between that are no
map, such as a channels-last block, pass positions through). Unit ``q`` reads, of each input
row, the units from :meth:`~stridelab.arith.ReceptiveField.first_unit_from` its field's start to
:meth:`~stridelab.arith.ReceptiveField.last_unit_within` its field's end (clipped to the input
row's size), or unit ``q`` itself when the row is element-wise on that axis (no window, an input
of the same size and stride read directly). The model input reaches position ``q`` itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stridelab.arith import ReceptiveField
from stridelab.inspect.probe import map_shape
from stridelab.inspect.records import LayerRecord, Report

Maps = dict[str, tuple[LayerRecord, tuple[int, ...]]]
INPUT = -1  # the model input among a row's sources


@dataclass(frozen=True)
class Reach:
    """Per axis and unit index ``q`` of one map row (input positions, inclusive):

    ``first[axis][q]`` is the first position that units ``q, q + 1, ...`` can see and
    ``last[axis][q]`` the last one that units ``0 .. q`` can see; ``inf`` / ``-inf`` where those
    units read only padding.
    """

    first: tuple[list[float], ...]
    last: tuple[list[float], ...]

    def of(self, unit: tuple[int, ...]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(first, last)`` per axis for one unit."""
        return (tuple(self.first[axis][u] for axis, u in enumerate(unit)),
                tuple(self.last[axis][u] for axis, u in enumerate(unit)))


@dataclass(frozen=True)
class _Grid:
    """A row (or the input) that is a map: its field, size per axis and reach."""

    field: ReceptiveField
    shape: tuple[int, ...]
    reach: Reach | None  # None: the model input (position q is unit q)


def reach_tables(report: Report, maps: Maps) -> dict[str, Reach]:
    """:class:`Reach` of every map row of ``report`` (``maps``: see
    :func:`stridelab.inspect.probe.map_records`); see the module docstring for the rules."""
    ndim = len(report.input_size) - 1
    # names can repeat (a functional ``relu`` in the scope of a module named ``relu``): a parent
    # is the latest row of that name, and rows are kept by their index
    latest: dict[str, int] = {"input": INPUT}
    grids: dict[int, _Grid] = {
        INPUT: _Grid(ReceptiveField.identity(ndim), tuple(report.input_size[1:]), None)}
    feeders: dict[int, list[int]] = {}  # row -> the map rows (INPUT: the input) it reads
    tables: dict[str, Reach] = {}
    for index, record in enumerate(report.layers):
        sources: list[int] = []
        direct: set[int] = set()
        for parent in record.inputs:
            at = latest.get(parent)
            if at is not None and at in grids:
                direct.add(at)
            found = [] if at is None else [at] if at in grids else feeders.get(at, [])
            sources += [f for f in found if f not in sources]
        feeders[index] = sources
        latest[record.name] = index
        found_map = maps.get(record.name)
        if found_map is None or len(found_map[0].output_shape) != len(record.output_shape):
            continue  # not a map (a row sharing its name with a later map has another rank)
        shape = map_shape(record, found_map[1])
        grid = _Grid(record.receptive_field, shape, None)
        elementwise = record.kernel is None and record.window is None
        firsts, lasts = [], []
        for axis in range(ndim):
            first_row, last_row = [], []
            for q in range(shape[axis]):
                lo, hi = _unit_reach(grid, axis, q, [(grids[s], elementwise and s in direct)
                                                     for s in sources])
                first_row.append(lo)
                last_row.append(hi)
            firsts.append(first_row)
            lasts.append(last_row)
        reach = Reach(tuple(firsts), tuple(lasts))
        grids[index] = _Grid(record.receptive_field, shape, reach)
        tables[record.name] = reach
    return tables


def _unit_reach(row: _Grid, axis: int, q: int,
                sources: list[tuple[_Grid, bool]]) -> tuple[float, float]:
    """First and last input position unit ``q`` of ``row`` can see on ``axis``."""
    field = row.field.axis(axis)
    start, end = field.start(q), field.end(q)
    assert not isinstance(start, tuple) and not isinstance(end, tuple)
    lo, hi = math.inf, -math.inf
    for source, elementwise in sources:
        size = source.shape[axis]
        source_field = source.field.axis(axis)
        if (elementwise and size == row.shape[axis]
                and source_field.stride == field.stride):
            first = last = q  # element-wise: the same unit of every input
        else:
            first_found = source_field.first_unit_from(start)
            last_found = source_field.last_unit_within(end)
            assert isinstance(first_found, int) and isinstance(last_found, int)
            first, last = max(first_found, 0), min(last_found, size - 1)
            if first > last:
                continue  # reads only that input's padding
        if source.reach is None:
            lo, hi = min(lo, float(first)), max(hi, float(last))
        else:
            lo = min(lo, source.reach.first[axis][first])
            hi = max(hi, source.reach.last[axis][last])
    return lo, hi

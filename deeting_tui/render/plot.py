"""Drawing numbers with characters: sparklines, horizontal bars and a braille line canvas.

Pure arithmetic over lists of ``float | None`` (None is a gap), so the scaling rules can be tested
on their own: a flat series sits in the middle instead of dividing by zero, bars grow from zero
whatever the signs, and a series longer than the space is averaged down, never cut off.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

#: Eight heights for sparklines, lowest first.
BLOCKS = "▁▂▃▄▅▆▇█"
#: Widths of a cell in eighths, for the tip of a bar growing to the right.
EIGHTHS = " ▏▎▍▌▋▊▉"
#: Braille dot bits by (row within the cell, column within the cell).
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
_BRAILLE = 0x2800

Points = Sequence[float | None]


def resample(values: Points, size: int) -> list[float | None]:
    """At most ``size`` points: consecutive buckets averaged (gaps ignored; all gaps stay a gap).
    Averaging keeps the shape of a long series where keeping the last ``size`` would not."""
    count = len(values)
    if size <= 0:
        return []
    if count <= size:
        return list(values)
    out: list[float | None] = []
    for index in range(size):
        bucket = [
            v for v in values[index * count // size : (index + 1) * count // size] if v is not None
        ]
        out.append(sum(v / len(bucket) for v in bucket) if bucket else None)
    return out


def bounds(series: Iterable[Points]) -> tuple[float, float] | None:
    """The lowest and highest point over all series, or None when there is no point at all."""
    low = high = None
    for values in series:
        for value in values:
            if value is None:
                continue
            low = value if low is None else min(low, value)
            high = value if high is None else max(high, value)
    return None if low is None or high is None else (low, high)


def position(value: float, low: float, high: float) -> float:
    """Where ``value`` lies between ``low`` (0.0) and ``high`` (1.0); 0.5 when the range is flat.
    Halving first keeps ``high - low`` finite for values near the float limits."""
    if not high > low:
        return 0.5
    span = high - low
    if math.isinf(span):
        return (value / 2 - low / 2) / (high / 2 - low / 2)
    return (value - low) / span


def sparkline(values: Points, width: int) -> str:
    """One block character per point (after ``resample`` to ``width``), scaled to the series'
    own range; a gap is a space, a flat series a row of middle blocks."""
    points = resample(values, width)
    found = bounds([points])
    if found is None:
        return " " * len(points)
    low, high = found
    chars = []
    for value in points:
        if value is None:
            chars.append(" ")
        elif not high > low:
            chars.append(BLOCKS[3])
        else:
            level = round(position(value, low, high) * (len(BLOCKS) - 1))
            chars.append(BLOCKS[min(len(BLOCKS) - 1, max(0, level))])
    return "".join(chars)


def hbar(value: float | None, low: float, high: float, width: int) -> str:
    """A bar ``width`` cells wide for ``value`` on the axis ``low..high`` (which should hold 0):
    positive values grow right from the zero line in eighths of a cell, negative ones grow left
    in whole cells. Any nonzero value shows at least a sliver, so small is not mistaken for zero.
    """
    if width <= 0:
        return ""
    if value is None or not high > low:
        return " " * width
    zero = round(position(0.0, low, high) * width)
    if value >= 0:
        eighths = round((position(value, low, high) - position(0.0, low, high)) * width * 8)
        eighths = max(eighths, 1 if value > 0 else 0)
        eighths = min(eighths, (width - zero) * 8)
        bar = "█" * (eighths // 8) + (EIGHTHS[eighths % 8] if eighths % 8 else "")
        return (" " * zero + bar).ljust(width)
    cells = round((position(0.0, low, high) - position(value, low, high)) * width)
    cells = min(max(cells, 1), zero)
    return (" " * (zero - cells) + "█" * cells).ljust(width)


class Canvas:
    """A grid of braille cells, each two dots wide and four tall; each cell remembers the
    series that last drew in it, for its color."""

    def __init__(self, columns: int, rows: int) -> None:
        self.columns, self.rows = columns, rows
        self.bits = [[0] * columns for _ in range(rows)]
        self.owner = [[-1] * columns for _ in range(rows)]

    @property
    def size(self) -> tuple[int, int]:
        """Width and height in dots."""
        return self.columns * 2, self.rows * 4

    def dot(self, x: int, y: int, series: int) -> None:
        """Set the dot at ``x`` (from the left) and ``y`` (from the top); outside is ignored."""
        if 0 <= x < self.columns * 2 and 0 <= y < self.rows * 4:
            row, column = y // 4, x // 2
            self.bits[row][column] |= _DOTS[y % 4][x % 2]
            self.owner[row][column] = series

    def line(self, start: tuple[int, int], end: tuple[int, int], series: int) -> None:
        """Bresenham's line between two dots, both ends included."""
        (x0, y0), (x1, y1) = start, end
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        step_x, step_y = (1 if x1 > x0 else -1), (1 if y1 > y0 else -1)
        error = dx + dy
        while True:
            self.dot(x0, y0, series)
            if (x0, y0) == (x1, y1):
                return
            double = 2 * error
            if double >= dy:
                error += dy
                x0 += step_x
            if double <= dx:
                error += dx
                y0 += step_y

    def plot(self, values: Points, low: float, high: float, series: int) -> None:
        """Draw a series across the whole width, joining neighbours and leaving gaps open."""
        width, height = self.size
        points = resample(values, width)
        count = len(points)
        previous: tuple[int, int] | None = None
        for index, value in enumerate(points):
            if value is None:
                previous = None
                continue
            x = (width - 1) // 2 if count == 1 else round(index * (width - 1) / (count - 1))
            y = height - 1 - round(position(value, low, high) * (height - 1))
            if previous is None:
                self.dot(x, y, series)
            else:
                self.line(previous, (x, y), series)
            previous = (x, y)

    def text_rows(self) -> list[list[tuple[str, int]]]:
        """Each row as (character, series) pairs; a space and -1 where nothing was drawn (a
        space, not the blank braille cell, so copied text stays clean)."""
        return [
            [
                (chr(_BRAILLE + bits) if bits else " ", owner)
                for bits, owner in zip(row, owners, strict=True)
            ]
            for row, owners in zip(self.bits, self.owner, strict=True)
        ]

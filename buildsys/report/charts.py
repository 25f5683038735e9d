"""Charts drawn as inline SVG: the page carries its plots and needs no plotting library.

Log axes on both sides; a point may sit off the log scale — 0 (exactly the baseline's output)
on a band at the bottom of the plot, infinity (outputs that do not line up) on a band at its
top — so a variant is never silently dropped from a chart. Each point has a tooltip
(``<title>``) and ``data-variant`` / ``data-x`` / ``data-y`` attributes. Colours and sizes are
attributes, not page CSS, so a chart copied out of the page still draws the same.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
WIDTH, HEIGHT = 380, 250
LEFT, RIGHT, TOP, BOTTOM = 62, 12, 28, 44
BAND = 16          # px of the plot kept for points at 0 (bottom) or infinity (top)
CHAR_W, LINE_H = 5.4, 10  # label metrics at font-size 9, for keeping labels apart
FONT = 'font-family="sans-serif" font-size="10"'


@dataclass
class Series:
    name: str
    color: str
    points: list[tuple[float, float, str]] = field(default_factory=list)  # (x, y, tooltip)
    line: bool = False
    dashed: bool = False
    marked: set[int] = field(default_factory=set)  # indexes of points drawn with a ring (the pick)


def colors(names: list[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def chart(kind: str, title: str, xlabel: str, ylabel: str, series: list[Series],
          xticks: list[float] | None = None, labels: bool = True) -> str:
    """One SVG chart, both axes log-scaled; ``kind`` names it in ``data-chart``."""
    points = [p for s in series for p in s.points if _positive(p[0]) and _number(p[1])]
    if not points:
        return (f'<svg class=chart data-chart="{kind}" width={WIDTH} height=40 {FONT} role=img>'
                f'<text x=8 y=24>{_e(title)}: nothing to plot</text></svg>')
    ys_all = [p[1] for p in points]
    xs = _Scale([p[0] for p in points] + list(xticks or []), LEFT, WIDTH - RIGHT)
    ys = _Scale(ys_all, HEIGHT - BOTTOM, TOP, zero=any(y <= 0 for y in ys_all),
                infinite=any(math.isinf(y) for y in ys_all))
    parts = [f'<svg class=chart data-chart="{kind}" width={WIDTH} height={HEIGHT} viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'{FONT} role=img aria-label="{_e(title)}"><title>{_e(title)}</title>',
             f'<rect width={WIDTH} height={HEIGHT} fill="#fff" />',
             f'<text x={WIDTH / 2:.0f} y=16 text-anchor=middle font-size=12 font-weight=bold>{_e(title)}</text>',
             *_axes(xs, ys, xlabel, ylabel, xticks)]
    labels_at = _Labels([(xs(x), ys(y)) for s in series for x, y, _ in s.points if _positive(x) and _number(y)])
    for s in series:
        parts += _series(s, xs, ys, labels_at if labels else None)
    return "".join(parts) + "</svg>"


def legend(names: list[str], palette: dict[str, str], dashed: set[str]) -> str:
    items = []
    for name in names:
        dash = ' stroke-dasharray="4 3"' if name in dashed else ""
        items.append(f'<span class=lg><svg width=22 height=10><line x1=0 y1=5 x2=22 y2=5 stroke="{palette[name]}" '
                     f'stroke-width=2{dash} /></svg> {_e(name)}</span>')
    return f'<div class=legend>{"".join(items)}</div>'


class _Scale:
    """log10 from data to pixels, padded beyond the data; ``zero`` / ``infinite`` keep a band at
    the start / end of the range for values off the log scale."""

    def __init__(self, values: list[float], start: float, end: float, zero: bool = False, infinite: bool = False):
        logs = [math.log10(v) for v in values if _positive(v)] or [0.0]  # all at 0 or infinity: any decade
        lo, hi = min(logs), max(logs)
        pad = max(0.08 * (hi - lo), 0.15)
        step = 1 if end > start else -1
        self.lo, self.hi, self.edges = lo - pad, hi + pad, (start, end)
        self.start = start + step * BAND * zero
        self.end = end - step * BAND * infinite
        self.zero, self.infinite = zero, infinite

    def __call__(self, value: float) -> float:
        if value <= 0:
            return (self.edges[0] + self.start) / 2
        if math.isinf(value):
            return (self.edges[1] + self.end) / 2
        return self.start + (math.log10(value) - self.lo) / (self.hi - self.lo) * (self.end - self.start)

    def ticks(self) -> list[float]:
        """Powers of ten in range, with 2 and 5 between them when the range is short."""
        steps = (1, 2, 5) if self.hi - self.lo < 2.5 else (1,)
        ticks = [m * 10 ** e for e in range(math.floor(self.lo), math.ceil(self.hi) + 1) for m in steps]
        return [t for t in ticks if self.lo <= math.log10(t) <= self.hi]


def _axes(xs: _Scale, ys: _Scale, xlabel: str, ylabel: str, xticks) -> list[str]:
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP
    parts = [f'<rect x={x0} y={y1} width={x1 - x0} height={y0 - y1} fill="#fcfcfc" stroke="#bbb" />']
    for t in xticks or xs.ticks():
        x = xs(t)
        parts.append(f'<line x1={x:.1f} y1={y1} x2={x:.1f} y2={y0} stroke="#eee" /><text x={x:.1f} y={y0 + 14} '
                     f'text-anchor=middle>{_num(t)}</text>')
    for t in ys.ticks():
        y = ys(t)
        parts.append(f'<line x1={x0} y1={y:.1f} x2={x1} y2={y:.1f} stroke="#eee" /><text x={x0 - 4} y={y + 4:.1f} '
                     f'text-anchor=end>{_num(t)}</text>')
    for on, value, label in ((ys.zero, 0.0, "0"), (ys.infinite, math.inf, "∞")):
        if on:
            edge = ys.start if value == 0 else ys.end
            parts.append(f'<line x1={x0} y1={edge:.1f} x2={x1} y2={edge:.1f} stroke="#bbb" stroke-dasharray="2 2" />'
                         f'<text x={x0 - 4} y={ys(value) + 4:.1f} text-anchor=end>{label}</text>')
    parts.append(f'<text x={(x0 + x1) / 2:.0f} y={HEIGHT - 8} text-anchor=middle>{_e(xlabel)}</text>'
                 f'<text transform="translate(14 {(y0 + y1) / 2:.0f}) rotate(-90)" text-anchor=middle>{_e(ylabel)}</text>')
    return parts


def _series(s: Series, xs: _Scale, ys: _Scale, labels: _Labels | None) -> list[str]:
    shown = [(i, p) for i, p in enumerate(s.points) if _positive(p[0]) and _number(p[1])]
    parts = []
    if s.line and len(shown) > 1:
        dash = ' stroke-dasharray="4 3"' if s.dashed else ""
        path = " ".join(f"{xs(x):.1f},{ys(y):.1f}" for _, (x, y, _t) in shown)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="1.5"{dash} />')
    for i, (x, y, tip) in shown:
        cx, cy = xs(x), ys(y)
        if i in s.marked:
            parts.append(f'<circle cx={cx:.1f} cy={cy:.1f} r=8 fill="none" stroke="{s.color}" stroke-width=2 '
                         'class=pickmark />')
        parts.append(f'<circle cx={cx:.1f} cy={cy:.1f} r=4 fill="{s.color}" data-variant="{_e(s.name)}" '
                     f'data-x="{x:.6g}" data-y="{y:.6g}"><title>{_e(tip)}</title></circle>')
        if labels is not None:
            parts.append(labels.place(s.name, cx, cy, s.color))
    return parts


class _Labels:
    """Puts each point's name, in its colour, beside it where it covers no other label and no
    other point, inside the plot: right or left of the point, then further up or down; else
    where it first tried."""

    OFFSETS = (-5, 13, -15, 23, -25, 33)

    def __init__(self, dots: list[tuple[float, float]]):
        self.dots, self.boxes = dots, []

    def place(self, text: str, cx: float, cy: float, color: str) -> str:
        width = CHAR_W * len(text)
        spots = [(x, cy + dy) for dy in self.OFFSETS for x in (cx + 7, cx - 7 - width)]
        x, y = next((spot for spot in spots if self._free(spot, width, (cx, cy))), spots[0])
        self.boxes.append((x, y - LINE_H + 2, x + width, y + 2))
        return f'<text x={x:.1f} y={y:.1f} font-size=9 fill="{color}">{_e(text)}</text>'

    def _free(self, spot: tuple[float, float], width: float, own: tuple[float, float]) -> bool:
        x, y = spot
        box = (x, y - LINE_H + 2, x + width, y + 2)
        if box[0] < LEFT + 1 or box[2] > WIDTH - RIGHT - 1 or box[1] < TOP + 1 or box[3] > HEIGHT - BOTTOM - 1:
            return False
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in self.boxes):
            return False
        return not any(box[0] - 4 < px < box[2] + 4 and box[1] - 4 < py < box[3] + 4
                       for px, py in self.dots if (px, py) != own)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)


def _positive(value) -> bool:
    """On a log scale: a number above 0 and finite."""
    return _number(value) and 0 < value < math.inf


def _num(value: float) -> str:
    return f"{value:g}" if 1e-3 <= value < 1e5 else f"{value:.0e}"


def _e(text: str) -> str:
    return html.escape(str(text))

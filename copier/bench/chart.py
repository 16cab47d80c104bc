"""A small SVG line chart, so that `copier bench` needs no plotting library."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 90, 30, 50, 60


def line_chart(*, title: str, x_label: str, y_label: str, points: Sequence[tuple[str, float]],
               references: Mapping[str, float] = {}) -> str:
    """Points (evenly spaced categories) joined by a line; references as dashed horizontals."""
    top_value = max([y for _x, y in points] + list(references.values()) + [1.0]) * 1.1
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_at(index: int) -> float:
        return LEFT + (plot_w * (index + 0.5) / len(points))

    def y_at(value: float) -> float:
        return TOP + plot_h * (1 - value / top_value)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
             f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>']
    for step in range(6):
        value = top_value * step / 5
        y = y_at(value)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{value:,.0f}</text>')
    for label, value in references.items():
        y = y_at(value)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c33" '
                     f'stroke-dasharray="6,4"/>')
        parts.append(f'<text x="{WIDTH - RIGHT - 4}" y="{y - 5:.1f}" text-anchor="end" fill="#c33">'
                     f'{escape(label)} {value:,.0f}</text>')
    path = " ".join(f"{'M' if i == 0 else 'L'}{x_at(i):.1f},{y_at(y):.1f}" for i, (_x, y) in enumerate(points))
    parts.append(f'<path d="{path}" fill="none" stroke="#1f6feb" stroke-width="2.5"/>')
    for i, (x, y) in enumerate(points):
        parts.append(f'<circle cx="{x_at(i):.1f}" cy="{y_at(y):.1f}" r="4" fill="#1f6feb"/>')
        parts.append(f'<text x="{x_at(i):.1f}" y="{y_at(y) - 9:.1f}" text-anchor="middle">{y:,.0f}</text>')
        parts.append(f'<text x="{x_at(i):.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle">{escape(x)}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 15}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text x="18" y="{TOP + plot_h / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 18 {TOP + plot_h / 2})">{escape(y_label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"

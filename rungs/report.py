"""Results a person reads: aligned terminal tables and PNG line plots. Shared by every job.

Generic on purpose: a table is a list of dict rows and the columns to show; a plot is a dict of
named series (xs, ys, error bars). Jobs decide what to put in them. Plots use matplotlib's Agg
backend through a bare `Figure` (no pyplot state), so they work headless, from threads, and in
tests; the Figure is returned so that callers and tests can inspect what was drawn.
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

_MARKERS = ("o", "s", "^", "D", "v", "P")
_LINESTYLES = ("-", "--", "-.", ":")
Series = tuple[Sequence[float], Sequence[float], Sequence[float] | None]  # xs, ys, yerr (or None)


def fmt_value(value: Any, digits: int = 3) -> str:
    """Floats with `digits` decimals (large ones with thousands separators), None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    return str(value)


def fmt_mean_std(mean: float | None, std: float | None, digits: int = 3) -> str:
    """'0.512 ± 0.020' ('0.512 ± 0.000' when the seeds agree, so every cell under a "mean ± std"
    header reads alike; '0.512' when std is missing or NaN; '-' when mean is missing)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _looks_numeric(value: Any) -> bool:
    if value is None or isinstance(value, (int, float)):
        return True
    text = str(value).lstrip("-+")
    return bool(text) and (text[0].isdigit() or text == "-")


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *,
                 headers: Mapping[str, str] | None = None, digits: int = 3) -> str:
    """An aligned plain-text table: numbers (and preformatted numbers such as '0.51 ± 0.02')
    right-aligned, text left-aligned."""
    headers = headers or {}
    head = [headers.get(c, c) for c in columns]
    cells = [[fmt_value(row.get(c), digits) for c in columns] for row in rows]
    numeric = [all(_looks_numeric(row.get(c)) for row in rows) for c in columns]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(head)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(head), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, headers: Mapping[str, str] | None = None,
                title: str | None = None, digits: int = 3, file: TextIO | None = None) -> str:
    """Print `format_table` (with an optional title line) and return the text printed."""
    text = format_table(rows, columns, headers=headers, digits=digits)
    if title:
        text = f"{title}\n{text}"
    print(text, file=file or sys.stdout)
    return text


def plot_lines(path: str | Path | None, series: Mapping[str, Series], xlabel: str, ylabel: str, *,
               logx2: bool = False, title: str | None = None,
               hlines: Mapping[str, tuple[float, float | None]] | None = None,
               ylim: tuple[float, float] | None = None, label_points: bool = True) -> Any:
    """One line per series (with error bars when yerr is given), optional dashed horizontal
    reference lines (`hlines`: name -> (y, yerr), drawn with a shaded band), a log2 x axis if
    `logx2` (ticks at the data's own x values when `label_points` and there are few, as for
    n = 1, 2, 4, ...; else at powers of two); saved atomically as PNG to `path` (skipped when
    None). Returns the Figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

    fig = Figure(figsize=(7, 4.5), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    all_x: set[float] = set()
    for i, (name, (xs, ys, yerr)) in enumerate(series.items()):
        xs, ys = list(xs), list(ys)
        all_x.update(xs)
        has_err = yerr is not None and any(e for e in yerr)
        # Series often coincide (pass@k = best-of-k with a perfect verifier): each later one is drawn
        # thinner, smaller and in another line style, so that the ones beneath stay visible.
        ax.errorbar(xs, ys, yerr=list(yerr) if has_err else None, label=name, marker=_MARKERS[i % len(_MARKERS)],
                    markersize=max(3.0, 8.0 - 1.5 * i), linestyle=_LINESTYLES[i % len(_LINESTYLES)],
                    capsize=3, linewidth=max(1.0, 2.6 - 0.4 * i), zorder=2 + i)
    for name, (y, yerr) in (hlines or {}).items():
        line = ax.axhline(y, label=name, linestyle="--", linewidth=1.2, color="0.35" if len(hlines or {}) == 1 else None)
        if yerr:
            ax.axhspan(y - yerr, y + yerr, color=line.get_color(), alpha=0.12, linewidth=0)
    if logx2:
        ax.set_xscale("log", base=2)
        positive = sorted(x for x in all_x if x > 0)
        if label_points and positive and len(positive) <= 16:  # the sampled points (1, 2, 4, ...)
            ax.xaxis.set_major_locator(FixedLocator(positive))
        else:
            ax.xaxis.set_major_locator(LogLocator(base=2))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 else f"{v:g}"))
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if series or hlines:
        ax.legend(loc="best", fontsize=9)
    if path is not None:
        save_png(fig, path)
    return fig


def moving_average(values: list[float], window: int) -> list[float]:
    """The trailing mean of the last `window` values at each position (fewer at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_run(out: Path, events: list[dict[str, Any]]) -> list[Path]:
    """reward.png and (with eval events) accuracy.png in `out`; returns the paths written."""
    train = [e for e in events if e.get("type") == "train"]
    evals = [e for e in events if e.get("type") == "eval"]
    written = []
    if train:
        steps = [e["step"] for e in train]
        window = max(1, len(train) // 20)
        series = {"reward": (steps, [e["reward"] for e in train], None),
                  "accuracy (train samples)": (steps, [e.get("accuracy", 0.0) for e in train], None)}
        if window > 1:
            series[f"reward (moving mean of {window})"] = (steps, moving_average([e["reward"] for e in train], window), None)
        plot_lines(out / "reward.png", series, "step", "reward / accuracy", title="GRPO training reward")
        written.append(out / "reward.png")
    if evals:
        plot_lines(out / "accuracy.png",
                   {"eval accuracy (greedy)": ([e["step"] for e in evals], [e["eval_accuracy"] for e in evals], None)},
                   "step", "accuracy", title="held-out greedy accuracy", ylim=(-0.02, 1.02))
        written.append(out / "accuracy.png")
    return written


def save_png(fig: Any, path: str | Path) -> None:
    """Render `fig` to PNG and write it atomically."""
    from rungs.runs import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    atomic_write_bytes(path, buffer.getvalue())


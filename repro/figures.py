"""A figure spec's plot (no torch; matplotlib, Agg): ``results/<paper>/figN[.<scale>].png``.

A figure spec is a table spec (``repro.spec``) whose rows are the points of the paper's sweeps
(``for`` rows) plus a ``figure`` block. Its markdown table is rendered like any table's
(``repro.tables.render``: every point with the paper's value where the text gives one, ours
as mean ± std over seeds); the PNG draws, per panel, x = the swept value, y = the panel's
result column, one line per series: our mean with a ±std error bar, and the paper's values
(where given) as hollow markers of the same colour. Pending points are left out and counted
in the panel's title. Cells from synthetic data make the figure's title say so.

A ``kind: histogram`` panel draws a list-valued result (e.g. cluster sizes) per series (one
row each): per seed a histogram on bins shared by every series of the panel, drawn as the mean
count per bin over seeds (a step line) with the min-max over seeds shaded.
"""

from __future__ import annotations

import math
import os
import tempfile
import textwrap
from pathlib import Path

import numpy as np

from repro import tables
from repro.spec import Table, paper_number, point_column, series_points


def _x(value) -> float | str:
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def panel_points(table: Table, scale: str, panel: dict, cells: dict) -> dict[str, list]:
    """series label -> [(x, mean | None, std | None, paper | None)] in the rows' order."""
    out = {}
    for label, series in panel["series"].items():
        pattern = series if isinstance(series, str) else series["rows"]
        y = panel["y"] if isinstance(series, str) else series["y"]
        pts = []
        for row in series_points(pattern, panel["x"], table.rows):
            if not table.row_at(row, scale):
                continue
            col = table.column(point_column(y, row))
            mean, std, _ = tables._summary(cells, row.name, col.id) or (None, None, 0)
            pts.append((_x(row.point[panel["x"]]), mean, std,
                        paper_number(row.paper.get(col.id, ""))))
        out[label] = pts
    return out


def histogram_values(table: Table, panel: dict, cells: dict) -> dict[str, list]:
    """series label -> the list-valued result of each stored seed of its row ([]: pending)."""
    col = table.column(panel["values"])
    out = {}
    for label, row in panel["series"].items():
        recs = [rec for _, rec in cells.get((row, col.id), [])]
        out[label] = [v for rec in recs if (v := tables.listed_result(rec, col.metric))]
    return out


def histogram_bins(values: list[np.ndarray], bins: int, log_x: bool = False) -> np.ndarray:
    """Bin edges shared by every list: ``bins`` equal bins over their range (log-spaced with
    ``log_x``), or one bin per integer when the values are integers spanning fewer."""
    x = np.concatenate(values)
    lo, hi = float(x.min()), float(x.max())
    if log_x and lo > 0:
        return np.geomspace(lo, hi * (1 + 1e-9), bins + 1)
    if np.all(x == np.round(x)) and hi - lo + 1 <= bins:
        return np.arange(lo - 0.5, hi + 1.5)
    return np.histogram_bin_edges(x, bins=bins)


def histogram_counts(values: list[np.ndarray], edges: np.ndarray) -> np.ndarray:
    """seeds x bins: each seed's count of values per bin."""
    return np.stack([np.histogram(v, bins=edges)[0] for v in values])


def _histogram_panel(ax, table: Table, panel: dict, cells: dict) -> int:
    """Draw one histogram panel; returns the number of pending series."""
    per_series = {label: [np.asarray(v, dtype=np.float64) for v in lists] for label, lists
                  in histogram_values(table, panel, cells).items()}
    done = {label: vs for label, vs in per_series.items() if vs}
    if done:
        edges = histogram_bins([v for vs in done.values() for v in vs], panel.get("bins", 30),
                               panel.get("log_x", False))
        for i, (label, vs) in enumerate(per_series.items()):
            if not vs:
                continue
            counts = histogram_counts(vs, edges)
            color = f"C{i % 10}"
            ax.stairs(counts.mean(axis=0), edges, color=color, linewidth=1.5,
                      label=f"{label} (ours, mean of {len(vs)} seed{'s' if len(vs) > 1 else ''})")
            if len(vs) > 1:
                ax.stairs(counts.max(axis=0), edges, baseline=counts.min(axis=0), fill=True,
                          color=color, alpha=0.2)
        ax.legend(fontsize=7)
    if panel.get("log_x"):
        ax.set_xscale("log")
    if panel.get("log_y"):
        ax.set_yscale("symlog", linthresh=1)
    col = table.column(panel["values"])
    ax.set_xlabel(panel.get("xlabel") or col.metric)
    ax.set_ylabel(panel.get("ylabel") or "count per bin")
    ax.grid(alpha=0.3)
    return len(per_series) - len(done)


def plot(table: Table, scale: str, out: Path | None = None, root=None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not table.figure:
        raise ValueError(f"{table.path}: not a figure spec (no figure block)")
    jobs, records, _ = tables.stored_jobs(table, scale, None, root)
    cells = tables.cell_values(table, jobs, records)
    synthetic = any(r.get("synthetic") for r in records.values())
    panels = table.figure["panels"]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    width = max(4.6 * ncols, 7.5)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 3.6 * nrows + 0.8), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        if panel.get("kind") == "histogram":
            pending = _histogram_panel(ax, table, panel, cells)
            ax.set_title(panel["title"] + (f"  [{pending} pending]" if pending else ""),
                         fontsize=9)
            continue
        pending = 0
        for i, (label, pts) in enumerate(panel_points(table, scale, panel, cells).items()):
            color = f"C{i % 10}"
            categorical = any(isinstance(p[0], str) for p in pts)
            xs = [str(p[0]) if categorical else p[0] for p in pts]
            done = [(x, p) for x, p in zip(xs, pts) if p[1] is not None]
            pending += len(pts) - len(done)
            if done:
                ax.errorbar([x for x, _ in done], [p[1] for _, p in done],
                            yerr=[p[2] for _, p in done], color=color, marker="o",
                            capsize=3, label=f"{label} (ours)",
                            linestyle="none" if categorical else "-")  # no line between methods
            given = [(x, p[3]) for x, p in zip(xs, pts) if p[3] is not None]
            if given:
                ax.plot([x for x, _ in given], [v for _, v in given], linestyle="none",
                        marker="s", markerfacecolor="none", color=color,
                        label=f"{label} (paper)")
        if panel.get("log_x"):
            ax.set_xscale("symlog", linthresh=1e-4)
        ax.set_xlabel(panel["x"])
        ax.set_ylabel(panel.get("ylabel") or next(
            (c.label for c in table.columns if c.id == panel["y"]), panel["y"]))
        ax.set_title(panel["title"] + (f"  [{pending} pending]" if pending else ""),
                     fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    head = f"{table.paper.upper()} {table.table} at scale {scale}"
    if synthetic:
        head += " — SYNTHETIC DATA, NOT A REPRODUCTION"
    chars = int(width * 14)  # about what fits in the figure's width at this font size
    fig.suptitle("\n".join([head] + textwrap.wrap(table.figure["caption"], chars)), fontsize=9)
    fig.tight_layout()
    out = Path(out or table.result_path_at(scale).with_suffix(".png"))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=90, metadata={"Software": None})
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out

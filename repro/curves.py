"""Training curves of a table's stored pretraining runs (no torch; matplotlib, Agg).

``repro curves <spec> --scale S [--row ROW ...] [--out PATH]``. Every pretraining record keeps
its per-epoch ``history`` (``epoch`` 0-based, ``lr``, ``loss`` and every other scalar the
method logged: loss terms, E-step statistics). For each selected row (default: every row
trained at the scale) the records of its recipe's seeds are read exactly as the table renderer
finds them (``repro.tables.stored_jobs``); each logged quantity gets one subplot, x = epoch
(1-based), one line per row: the mean over seeds, with a shaded min-max band when there are
several. A quantity a row does not log (or logs only from some epoch on, e.g. PCL's after its
warm-up) is drawn where it exists. The text summary gives, per row and quantity, the mean over
seeds at the first and the last epoch where it was logged; rows without a stored pretraining
are listed as pending.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from repro import jobs as J
from repro import tables
from repro.freshness import Judge
from repro.spec import Row, Table

FIRST_QUANTITIES = ("loss", "lr")  # drawn first; the others follow in name order
MAX_COLUMNS = 4  # subplots per figure row
LINESTYLES = ("-", "--", ":", "-.")  # past 20 rows, colours repeat with the next style


class CurvesError(ValueError):
    """A bad ``--row`` or ``--out``; the command line prints it as one line (exit 2)."""


@dataclass
class Series:
    """One quantity of one row: per epoch (1-based), the mean, min and max over seeds."""
    epochs: list[int]
    mean: list[float]
    low: list[float]
    high: list[float]
    seeds: list[int]  # how many seeds logged it at each epoch


@dataclass
class RowCurves:
    name: str
    recipe_id: str
    expected_seeds: list[int]
    seeds: list[int] = field(default_factory=list)  # seeds with a stored pretraining record
    series: dict[str, Series] = field(default_factory=dict)
    synthetic: bool = False
    stale: bool = False

    @property
    def pending(self) -> bool:
        return not self.seeds


def trained_rows(table: Table, scale: str) -> list[Row]:
    return [r for r in table.rows
            if table.row_recipe(r, scale) is not None and table.row_at(r, scale)]


def select_rows(table: Table, scale: str, names: list[str] | None = None) -> list[Row]:
    """The rows named (in the table's order; default: every row trained at ``scale``)."""
    trained = trained_rows(table, scale)
    if not names:
        return trained
    allowed = ", ".join(r.name for r in trained) or "(none: no row is trained at this scale)"
    for name in names:
        if any(r.name == name for r in trained):
            continue
        row = next((r for r in table.rows if r.name == name), None)
        if row is None:
            raise CurvesError(f"--row {name!r}: not a row of {table.path}; allowed: {allowed}")
        why = ("not rerun (no recipe)" if row.recipe is None and not row.recipe_by_scale
               else f"not trained at scale {scale}")
        raise CurvesError(f"--row {name!r}: {why}, so no training curves; allowed: {allowed}")
    return [r for r in trained if r.name in names]


def _scalar(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _series(histories: list[list[dict]]) -> dict[str, Series]:
    """{quantity: Series} over the histories of one row's seeds."""
    per: dict[str, dict[int, list[float]]] = {}
    for history in histories:
        for i, entry in enumerate(history):
            epoch = entry.get("epoch", i)
            epoch = int(epoch) + 1 if _scalar(epoch) is not None else i + 1
            for name, value in entry.items():
                if name != "epoch" and (x := _scalar(value)) is not None:
                    per.setdefault(name, {}).setdefault(epoch, []).append(x)
    out = {}
    for name, by_epoch in per.items():
        epochs = sorted(by_epoch)
        out[name] = Series(epochs=epochs,
                           mean=[statistics.fmean(by_epoch[e]) for e in epochs],
                           low=[min(by_epoch[e]) for e in epochs],
                           high=[max(by_epoch[e]) for e in epochs],
                           seeds=[len(by_epoch[e]) for e in epochs])
    return out


def collect(table: Table, scale: str, rows: list[Row], root=None) -> list[RowCurves]:
    """The curves of ``rows`` from the store (``root``: default ``$REPRO_STORE``)."""
    jobs, records, sources = tables.stored_jobs(table, scale, root=root)
    seeds = list(table.scales[scale]["seeds"])
    pre = {j.key: j for j in jobs if j.kind == "pretrain"}
    judge = Judge(list(pre.values()), {k: r for k, r in records.items() if k in pre})
    out = []
    for row in rows:
        rid = table.row_recipe(row, scale)
        curves = RowCurves(name=row.name, recipe_id=rid, expected_seeds=seeds)
        histories = []
        for seed in seeds:
            # the key, not the recipe id: a pretraining shared by two recipes is one job
            key = J.pretrain_job(table, rid, scale, seed, sources).key
            rec = records.get(key)
            if rec is None:
                continue
            curves.seeds.append(seed)
            histories.append(rec.get("history") or [])
            curves.synthetic |= bool(rec.get("synthetic"))
            curves.stale |= not judge.verdict(key).fresh
        curves.series = _series(histories)
        out.append(curves)
    return out


def quantities(curves: list[RowCurves]) -> list[str]:
    names = {q for c in curves for q in c.series}
    return [q for q in FIRST_QUANTITIES if q in names] + sorted(names - set(FIRST_QUANTITIES))


def default_path(table: Table, scale: str) -> Path:
    """``results/<paper>/<table>.<scale>.curves.png``."""
    return table.result_path.with_name(f"{table.table}.{scale}.curves.png")


def fmt(x: float) -> str:
    return f"{x:.5g}"


def _notes(c: RowCurves) -> str:
    notes = []
    if len(c.seeds) < len(c.expected_seeds):
        notes.append(f"{len(c.seeds)}/{len(c.expected_seeds)} seeds")
    if c.synthetic:
        notes.append("synthetic")
    if c.stale:
        notes.append("stale")
    return ", ".join(notes)


def summary(table: Table, scale: str, curves: list[RowCurves]) -> str:
    """Per row and quantity: mean over seeds at the first -> last epoch it was logged."""
    body = []
    for c in curves:
        if c.pending:
            body.append([c.name, "pending", "", "", "0", "no stored pretraining"])
            continue
        if not c.series:
            body.append([c.name, "(none)", "", "", str(len(c.seeds)),
                         ", ".join(filter(None, ["records without a history", _notes(c)]))])
        for q in quantities([c]):
            s = c.series[q]
            body.append([c.name, q, f"{fmt(s.mean[0])} (epoch {s.epochs[0]})",
                         f"{fmt(s.mean[-1])} (epoch {s.epochs[-1]})", str(len(c.seeds)),
                         _notes(c)])
    head = (f"{table.paper.upper()} {table.table} at scale {scale}: training curves "
            f"(mean over seeds, first -> last logged epoch)")
    text = tabulate(body, headers=["row", "quantity", "first", "last", "seeds", "note"],
                    tablefmt="simple", disable_numparse=True)
    return f"{head}\n{text}\n"


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def plot(table: Table, scale: str, curves: list[RowCurves], out: str | Path) -> Path:
    """Write the figure to ``out`` (a .png; written atomically) and return its path."""
    # no pyplot: no global state, no display; the figure's own canvas is Agg's
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(out)
    names = quantities(curves)
    drawn = [c for c in curves if c.series]
    ncols = max(1, min(MAX_COLUMNS, len(names)))
    nrows = max(1, math.ceil(len(names) / ncols))
    legend_cols = min(len(drawn), 2 if len(drawn) <= 6 else max(2, ncols)) or 1
    legend_rows = math.ceil(len(drawn) / legend_cols)
    fig = Figure(figsize=(3.6 * ncols + 0.6, 2.7 * nrows + 0.9 + 0.22 * legend_rows),
                 dpi=90, layout="constrained")
    FigureCanvasAgg(fig)
    title = (f"{table.paper.upper()} {table.table}: {table.title} — pretraining curves, "
             f"scale {scale}")
    synthetic = [c.synthetic for c in drawn]
    if any(synthetic):
        title += ("\nSYNTHETIC DATA" + ("" if all(synthetic) else " in rows marked (synthetic)")
                  + " — tests the pipeline, not the paper's claims")
    fig.suptitle(title, fontsize=10)
    if not names:
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "no stored pretraining history yet\n(repro launch computes it)",
                ha="center", va="center")
    colors = _colors(len(drawn))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel() if names else []
    handles = {}
    first = min((s.epochs[0] for c in drawn for s in c.series.values()), default=1)
    last = max((s.epochs[-1] for c in drawn for s in c.series.values()), default=1)
    pad = max(0.3, 0.03 * (last - first))
    for ax, q in zip(axes, names):
        for i, c in enumerate(drawn):
            s = c.series.get(q)
            if s is None:
                continue
            marker = "o" if len(s.epochs) <= 30 else None
            (line,) = ax.plot(s.epochs, s.mean, color=colors[i], marker=marker,
                              linestyle=LINESTYLES[i // 20 % len(LINESTYLES)],
                              markersize=3, linewidth=1.4, label=c.name)
            handles.setdefault(i, line)
            if max(s.seeds) > 1:
                ax.fill_between(s.epochs, s.low, s.high, color=colors[i], alpha=0.18,
                                linewidth=0)
        ax.set_xlim(first - pad, last + pad)  # every quantity on the same epochs
        ax.set_title(q, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, alpha=0.3)
    for ax in list(axes)[len(names):]:
        ax.axis("off")
    if handles:
        mixed = any(synthetic) and not all(synthetic)
        labels = [c.name + (" (synthetic)" if mixed and c.synthetic else "")
                  + (" (stale)" if c.stale else "") for c in drawn]
        fig.legend([handles[i] for i in range(len(drawn))], labels, loc="outside lower center",
                   ncols=legend_cols, fontsize=8, frameon=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", metadata={"Software": None})
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary file (mkstemp makes it 0600)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def check_out(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise CurvesError(f"--out {str(out)!r}: not a .png file name; allowed: a path ending "
                          "in .png")
    if out.is_dir():
        raise CurvesError(f"--out {str(out)!r}: a directory; allowed: a .png file path")
    if out.parent.exists() and not out.parent.is_dir():
        raise CurvesError(f"--out {str(out)!r}: {str(out.parent)!r} is not a directory")
    return out


def write(table: Table, scale: str, rows: list[str] | None = None, out: str | Path | None = None,
          root=None) -> tuple[Path, str]:
    """Plot the curves of ``rows`` to ``out`` (default ``default_path``); returns the path and
    the text summary."""
    out = check_out(out) if out is not None else default_path(table, scale)
    curves = collect(table, scale, select_rows(table, scale, rows), root)
    try:
        path = plot(table, scale, curves, out)
    except OSError as err:
        raise CurvesError(f"--out {str(out)!r}: cannot write: {err.strerror or err}") from None
    return path, summary(table, scale, curves)

"""Render a table from stored records and the paper's numbers (no torch).

Per cell: the paper's value as printed, ours (mean ± std over seeds) and the difference.
Rows without a recipe are shown as printed and labelled by their ``origin``: quoted by the
paper from other work, or the paper's own run that we do not rerun (with the spec's reason
under the table). Anything computed on synthetic data is labelled so in the header and in
every such cell.
"""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import numpy as np
from tabulate import tabulate

from repro import jobs as J
from repro import store
from repro.data import DATASET_INFO, is_synthetic
from repro.data.fingerprint import data_present
from repro.freshness import Judge
from repro.spec import REGISTRY_FIELDS, Column, Row, Table, paper_number

POLICY_MARK = {"test": "ᵀ", "val": "ⱽ"}
# The "ours" cell of a row we do not rerun, by the row's origin (repro.spec.ORIGINS).
ORIGIN_LABEL = {"quoted": "(quoted)", "paper": "(paper's run, not rerun)"}
LEGEND = (
    "paper = as printed in the paper; ours = mean ± std over seeds of our run of the row's "
    "recipe (pending = not computed yet; blank = a column not evaluated for this row, e.g. "
    "the paper has no such cell); Δ = ours − paper. Rows without a recipe are not rerun: "
    "(quoted) = the paper quoted this row from other work (cited numbers); "
    "(paper's run, not rerun) = the paper's own run, which we do not rerun (why: below). "
    "ᵀ = a hyper-parameter (e.g. SVM cost) was selected on the test set, as the paper's "
    "protocol does; ⱽ = selected on a held-out split of the training data. "
    "(stale) = made by other code or data than this checkout's."
)
PARTIAL_LEGEND = (
    "paper = as printed in the paper, on the paper's dataset; ours = mean ± std over seeds of "
    "our run of the row's recipe at this scale, on this scale's data (see the Data line), so "
    "the two are not comparable cell by cell and no difference is shown: compare orderings. "
    "Rows without a paper value are reference rows computed by the same protocols. "
    "(pending = not computed yet; (stale) = made by other code or data than this checkout's.)"
)


def source_candidates(table: Table, scale: str) -> list[dict[str, str]]:
    """Possible {dataset: real|synthetic} maps: fixed by what is on disk, both when absent."""
    options = []
    for name in J.datasets_used(table, scale):
        folder = DATASET_INFO[name].folder
        if not folder:
            options.append([(name, "real")])
        elif data_present(name):  # its folder, or elsewhere its reader looks (Fashion-MNIST)
            options.append([(name, "synthetic" if is_synthetic(name) else "real")])
        else:
            options.append([(name, "real"), (name, "synthetic")])
    return [dict(combo) for combo in itertools.product(*options)]


def stored_jobs(table: Table, scale: str, sources: dict[str, str] | None = None,
                root=None) -> tuple[list[J.Job], dict[str, dict], dict[str, str]]:
    """Expand the table and load whichever records exist (the source map with most wins)."""
    best = None
    for cand in [sources] if sources else source_candidates(table, scale):
        jobs = J.expand(table, scale, cand)
        records = {j.key: r for j in jobs if (r := store.get(j.key, root)) is not None}
        if best is None or len(records) > len(best[1]):
            best = (jobs, records, cand)
    return best


# repro.spec.SUMMARIES, computed: a list-valued result (1-d float array) -> one number.
SUMMARY_FNS = {
    "mean": np.mean,
    "std": np.std,
    "cv": lambda x: np.std(x) / np.mean(x),
    "min": np.min,
    "max": np.max,
    "median": np.median,
    "max_over_mean": lambda x: np.max(x) / np.mean(x),
    "share_below_half_mean": lambda x: np.mean(x < np.mean(x) / 2),
}


def listed_result(rec: dict, name: str) -> list | None:
    """A record's list-valued result ``name``: its metric, or else its artifact (clustering's
    ``cluster_sizes``); None when it has neither or it is not a non-empty list of numbers."""
    value = rec.get("metrics", {}).get(name, rec.get("artifacts", {}).get(name))
    if not isinstance(value, list) or not value or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    return value


def column_value(col: Column, rec: dict) -> float | None:
    """The number a result column takes from one record (None: the record has no such result):
    its metric, or the column's summary of a list-valued result; times ``scale_factor``."""
    if col.summary is None:
        value = rec.get("metrics", {}).get(col.metric)
    else:
        values = listed_result(rec, col.metric)
        value = None if values is None else float(
            SUMMARY_FNS[col.summary](np.asarray(values, dtype=np.float64)))
    return None if value is None else value * col.scale_factor


def _fmt(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


def cell_values(table: Table, jobs: list[J.Job], records: dict[str, dict]):
    """(row, column) -> list of (value, record) over seeds."""
    out: dict[tuple[str, str], list] = {}
    for job in jobs:
        if job.kind != "eval":
            continue
        for row_name, col_id in job.cells:
            col = table.column(col_id)
            rec = records.get(job.key)
            entry = out.setdefault((row_name, col_id), [])
            if rec is not None:
                # A protocol that did not produce the column's metric (e.g. mask AP from a
                # box-only backend) leaves the cell without a number instead of failing.
                entry.append((column_value(col, rec), rec))
    return out


def _policy_mark(recs: list[dict]) -> str:
    policies = {s.get("policy") for r in recs for s in r.get("selection", {}).values()}
    return "".join(POLICY_MARK[p] for p in sorted(policies) if p in POLICY_MARK)


def _commit(rec: dict) -> str:
    git = rec.get("provenance", {}).get("git", {})
    return (git.get("commit") or "unknown")[:10] + ("-dirty" if git.get("dirty") else "")


def _stale_lines(jobs, records, stale: dict[str, list[str]], unchecked: list[str]) -> list[str]:
    lines = []
    if stale:
        commits = sorted({_commit(records[k]) for k in stale})
        reasons: dict[str, int] = {}
        for rs in stale.values():
            for r in rs:
                reasons[r] = reasons.get(r, 0) + 1
        why = "; ".join(f"{r} ({n})" for r, n in sorted(reasons.items(), key=lambda x: -x[1])[:6])
        lines.append(f"- **Stale**: {len(stale)} of {len(records)} stored records were made by "
                     f"other code or data than this checkout's (commit {', '.join(commits)}); "
                     f"cells using them are marked (stale); `repro launch` recomputes them. "
                     f"Why: {why}")
    if unchecked:
        lines.append(f"- Data fingerprints not checked (files not on this machine): "
                     f"{', '.join(unchecked)}")
    return lines


def _not_rerun_lines(table: Table, scale: str) -> list[str]:
    """The paper's own runs that we do not rerun, grouped by the spec's reason."""
    by_reason: dict[str, list[str]] = {}
    for row in table.rows:
        if row.origin == "paper" and table.row_at(row, scale):
            by_reason.setdefault(row.reason, []).append(row.name)
    return [f"- The paper's own run{'s' if len(names) > 1 else ''}, not rerun: "
            f"{', '.join(names)}" + (f" — {reason}" if reason else " (no reason given)")
            for reason, names in by_reason.items()]


def render(table: Table, scale: str, *, root=None, sources: dict[str, str] | None = None) -> str:
    if any(c.registry for c in table.columns):
        return render_datasets(table)
    jobs, records, sources = stored_jobs(table, scale, sources, root)
    judge = Judge(jobs, records)
    stale = judge.stale()
    cells = cell_values(table, jobs, records)
    partial = table.is_partial(scale)
    eval_cols = [c for c in table.columns if c.eval and table.has_eval(c.eval, scale)]
    if partial:  # only the columns some row of this scale computes
        eval_cols = [c for c in eval_cols if any(
            c.id in r.evaluate and table.row_at(r, scale) for r in table.rows)]
    info_cols = [c for c in table.columns if not c.eval]
    headers = ["Method"] + [c.label for c in info_cols]
    for c in eval_cols:  # a partial scale's data is not the paper's: no difference column
        headers += [f"{c.label} paper", f"{c.label} ours"] + ([] if partial else
                                                             [f"{c.label} Δ"])
    body = []
    synthetic_any = any(j.synthetic for j in jobs)
    for row in table.rows:
        if not table.row_at(row, scale):
            continue
        line = [row.name] + [row.info.get(c.id, "") for c in info_cols]
        for c in eval_cols:
            printed = row.paper.get(c.id, "")
            if table.row_recipe(row, scale) is None:
                line += [printed, ORIGIN_LABEL[row.origin], ""]
                continue
            if c.id not in row.evaluate:
                line += [printed, "", ""]
                continue
            vals = cells.get((row.name, c.id), [])
            n_expected = len(table.scales[scale]["seeds"])
            if not vals:
                line += [printed, "pending", ""]
                continue
            xs = [v for v, _ in vals if v is not None]
            if not xs:
                line += [printed, f"n/a (no {c.metric})", ""]
                continue
            mean = statistics.fmean(xs)
            ours = _fmt(mean, c.digits)
            if len(xs) > 1:
                ours += f" ± {_fmt(statistics.stdev(xs), c.digits)}"
            if len(xs) < n_expected:
                ours += f" ({len(xs)}/{n_expected} seeds)"
            ours += _policy_mark([r for _, r in vals])
            if any(r.get("synthetic") for _, r in vals):
                ours += " (synthetic)"
            if any(r["key"] in stale for _, r in vals):
                ours += " (stale)"
            ref = paper_number(printed)
            delta = f"{mean - ref:+.{c.digits}f}" if ref is not None else ""
            line += [printed, ours, delta]
        body.append(line[:len(headers)] if not partial else _drop_deltas(line, info_cols,
                                                                          eval_cols))

    commits = sorted({_commit(r) for r in records.values()})
    data_lines = [f"{name} ({'SYNTHETIC fixture' if src == 'synthetic' else 'real'})"
                  for name, src in sorted(sources.items())]
    n_eval = sum(1 for j in jobs if j.kind == "eval")
    n_done = sum(1 for j in jobs if j.kind == "eval" and j.key in records)
    parts = [f"# {table.paper.upper()} {table.table}: {table.title}", ""]
    if synthetic_any:
        parts += ["> **SYNTHETIC DATA — NOT A REPRODUCTION.** Cells marked (synthetic) were "
                  "computed on generated stand-in data (no real dataset was available); they test "
                  "the pipeline, not the paper's claims.", ""]
    parts += [
        f"- Scale: `{scale}` — {table.scales[scale].get('description', '')}".rstrip(" —"),
        f"- Data: {', '.join(data_lines)}",
        f"- Code: commit {', '.join(commits) or 'n/a (no records yet)'}",
        f"- Cells computed: {n_done}/{n_eval} evaluation jobs stored; "
        f"seeds {table.scales[scale]['seeds']}",
        *_stale_lines(jobs, records, stale, judge.unchecked),
        f"- Regenerate: `{table.command or 'repro launch ' + str(table.path)}`",
        "",
        tabulate(body, headers=headers, tablefmt="pipe", disable_numparse=True),
        "",
        PARTIAL_LEGEND if partial else LEGEND,
    ]
    # a paper's claim is checked on real data only: synthetic numbers test the pipeline
    claims = [] if synthetic_any else claim_lines(table, scale, cells)
    if claims:
        parts += ["", "**The paper's claims at this scale** (mean ± std over seeds):", *claims]
    learns = [] if synthetic_any else baseline_lines(table, scale, cells)
    if learns:
        parts += ["", *learns]
    not_rerun = _not_rerun_lines(table, scale)
    if not_rerun:
        parts += [""] + not_rerun
    for note in table.notes:
        parts.append(f"\n- {note}")
    return "\n".join(parts) + "\n"


def _drop_deltas(line: list, info_cols: list, eval_cols: list) -> list:
    head = 1 + len(info_cols)
    out = line[:head]
    for i in range(len(eval_cols)):
        out += line[head + 3 * i: head + 3 * i + 2]
    return out


def _summary(cells: dict, row: str, col: str) -> tuple[float, float, int] | None:
    xs = [v for v, _ in cells.get((row, col), []) if v is not None]
    if not xs:
        return None
    return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0, len(xs)


def _verdict(a: tuple, b: tuple) -> tuple[str, int]:
    """Whether a > b for two ``_summary`` results: "holds" when the means differ by more than the
    larger std, "holds within the spread" / "does not hold within the spread" when they differ
    by less, "does not hold"; with one seed of either, "holds on one seed" / "does not hold on
    one seed". Also the number of seeds both have."""
    spread, n = max(a[1], b[1]), min(a[2], b[2])
    if n < 2:  # no spread to judge against
        return ("holds" if a[0] > b[0] else "does not hold") + " on one seed", n
    if a[0] > b[0]:
        return ("holds" if a[0] - b[0] > spread else "holds within the spread"), n
    return ("does not hold" if b[0] - a[0] > spread else "does not hold within the spread"), n


def _compare(table: Table, cells: dict, better: str, worse: str, col: str):
    """``_verdict`` of row ``better`` over row ``worse`` in column ``col``, the number of seeds
    and the numbers behind it ("m ± s vs m ± s"); None when either cell has no value."""
    a, b = _summary(cells, better, col), _summary(cells, worse, col)
    if a is None or b is None:
        return None
    verdict, n = _verdict(a, b)
    d = table.column(col).digits
    return verdict, n, f"{_fmt(a[0], d)} ± {_fmt(a[1], d)} vs {_fmt(b[0], d)} ± {_fmt(b[1], d)}"


def _label(table: Table, col: str) -> str:
    return table.column(col).label


def claim_lines(table: Table, scale: str, cells: dict) -> list[str]:
    """One line per claim and column: whether ``better`` > ``worse`` in our numbers at
    ``scale`` (``_verdict``)."""
    out = []
    for claim in table.claims:
        for col in claim["columns"]:
            compared = _compare(table, cells, claim["better"], claim["worse"], col)
            if compared is None:
                continue
            verdict, n, numbers = compared
            out.append(f"- {claim['better']} > {claim['worse']} in {_label(table, col)} "
                       f"({claim['source']}): **{verdict}** — {numbers} "
                       f"({n} seed{'s' if n > 1 else ''})")
    return out


def baseline_lines(table: Table, scale: str, cells: dict) -> list[str]:
    """Whether every method learns: one line per trained row that is not a reference row (its
    name ends in "(reference)") nor a baseline, with its verdict (``_verdict``) against each of
    the spec's ``baselines`` on their columns; first a count of the checks that hold beyond the
    spread."""
    if not table.baselines:
        return []
    references = {b["row"] for b in table.baselines}
    out, verdicts, seeds = [], [], set()
    for row in table.rows:
        if (row.name in references or row.name.endswith("(reference)")
                or table.row_recipe(row, scale) is None or not table.row_at(row, scale)):
            continue
        groups = []
        for base in table.baselines:
            parts = []
            for col in base["columns"]:
                compared = _compare(table, cells, row.name, base["row"], col)
                if compared is None:
                    continue
                verdict, n, numbers = compared
                verdicts.append(verdict)
                seeds.add(n)
                parts.append(f"{_label(table, col)} **{verdict}** ({numbers})")
            if parts:
                groups.append(f"> {base['row']}: " + ", ".join(parts))
        if groups:
            out.append(f"- {row.name}: " + "; ".join(groups))
    if not out:
        return []
    n = min(seeds)
    if n < 2:
        count = (f"{sum(v.startswith('holds') for v in verdicts)} of {len(verdicts)} checks "
                 f"hold on one seed (no spread yet)")
    else:
        count = (f"{verdicts.count('holds')} of {len(verdicts)} checks hold beyond the spread "
                 f"({n}+ seeds)")
    return [f"**Does every method learn?** Each trained method against the reference "
            f"rows (mean ± std over seeds): {count}.", *out]


def write(table: Table, scale: str, out: Path | None = None, **kw) -> Path:
    """The markdown table (and, for a figure spec, its PNG beside it: ``repro.figures``)."""
    out = Path(out or table.result_path_at(scale))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(table, scale, **kw))
    if table.figure:
        from repro import figures

        figures.plot(table, scale, out.with_suffix(".png"), root=kw.get("root"))
    return out


# ---------------------------------------------------------------------------------------------
# A table of datasets (registry columns): the paper's cells beside what our registry says.

DATASETS_LEGEND = (
    "paper = as printed in the paper; ours = what this repository's registry says for the "
    "dataset and split the paper uses (where each comes from: above); ≠ = ours differs from "
    "the paper (what and why: below). Nothing is computed: every scale renders this table alike."
)


def registry_value(row: Row, field: str) -> str | None:
    """What our registry says for ``field`` (a key of ``REGISTRY_FIELDS``) of the row's dataset,
    written as the paper prints it; None: no value (not registered, no count)."""
    from repro.launch.cost import SPLIT_SIZES

    ref = row.dataset
    if ref is None:
        return None
    name, split = ref["name"], ref["split"]
    if field == "split":
        return split
    if field == "classes":
        return f"{DATASET_INFO[name].num_classes:,}"
    if field == "image_size":
        size = ref.get("image_size")
        return None if size is None else f"{size}×{size}"
    sizes = SPLIT_SIZES.get(name, {})
    parts = split.split("+")
    if split not in sizes and not all(p in sizes for p in parts):
        return None
    return f"{sizes[split] if split in sizes else sum(sizes[p] for p in parts):,}"


def _same(printed: str, ours: str) -> bool:
    def norm(text: str) -> str:
        return "".join(text.split()).replace(",", "").replace("x", "×").lower()

    return norm(printed) == norm(ours)


def render_datasets(table: Table) -> str:
    info_cols = [c for c in table.columns if not c.eval]
    headers = ["Dataset"]
    for c in info_cols:
        headers += [f"{c.label} paper", f"{c.label} ours"] if c.registry else [c.label]
    body, differs = [], []
    for row in table.rows:
        line, diff = [row.name], []
        for c in info_cols:
            printed = row.paper.get(c.id, row.info.get(c.id, ""))
            if not c.registry:
                line.append(printed)
                continue
            ours = registry_value(row, c.registry)
            if ours is None:
                shown = "not in our registry" if row.dataset is None else "no value"
                diff.append(f"{c.label} (paper {printed}, ours: {shown})")
                line += [printed, f"{shown} ≠"]
            elif _same(printed, ours):
                line += [printed, ours]
            else:
                diff.append(f"{c.label} (paper {printed}, ours {ours})")
                line += [printed, f"{ours} ≠"]
        body.append(line)
        if diff:
            differs.append(f"- Ours differs from the paper: {row.name} — {'; '.join(diff)}: "
                           f"{row.reason or 'no reason given'}")
    sources = [f"{c.label}: {REGISTRY_FIELDS[c.registry]}" for c in info_cols if c.registry]
    parts = [f"# {table.paper.upper()} {table.table}: {table.title}", "",
             f"- Ours: {'; '.join(sources)}",
             f"- Regenerate: `{table.command or 'repro launch ' + str(table.path)}`", "",
             tabulate(body, headers=headers, tablefmt="pipe", disable_numparse=True), "",
             DATASETS_LEGEND]
    if differs:
        parts += [""] + differs
    for note in table.notes:
        parts.append(f"\n- {note}")
    return "\n".join(parts) + "\n"

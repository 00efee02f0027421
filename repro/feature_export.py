"""``repro features <spec> --scale S --row ROW [--seed N] [--eval COLUMN] [--out DIR]`` (no torch).

Finds the features an evaluation job of a stored run cached under
``<runs>/<pretrain key>/features/<hash>.npz`` (``repro.features.cached_features``; runs root:
``$REPRO_RUNS`` or ``runs``), prints their paths and a ready-to-run ``repro eval`` command
line; ``--out DIR`` also copies them there as ``<column>_train.npz`` / ``<column>_test.npz``.
The cache file name is the hash of what made the features (encoder, layer, image size, data
ref, the pretraining run, the extraction code and the data files), so it is recomputed here
the way the worker computes it: a file made by other code or data is not found.
Only ``repro.cli`` imports this module.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
from pathlib import Path


class FeatureExportError(ValueError):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec")
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--row", required=True, help="row name of the table (a trained row)")
    parser.add_argument("--seed", type=int, default=None,
                        help="pretraining seed (default: the scale's first seed)")
    parser.add_argument("--eval", dest="column", default=None, metavar="COLUMN",
                        help="result column id (default: every feature column of the row)")
    parser.add_argument("--out", type=Path, default=None,
                        help="copy the features here as <column>_train.npz, <column>_test.npz")


def cache_ident(ev: dict, recipe: dict, part: str, run_id: str, data_digest) -> dict:
    """The dict whose ``content_key`` names the cache file (as ``run_eval`` +
    ``cached_features`` build it)."""
    from repro import fingerprint as FP

    feat_cfg = dict(ev.get("features", {}))
    image_size = feat_cfg.pop("image_size", recipe["views"]["image_size"])
    layer = feat_cfg.get("layer", "pooled")
    pool = feat_cfg.get("pool", 2)
    ref = ev[part]
    return {"encoder": ev.get("encoder", "query"), "layer": layer,
            "pool": pool if layer == "conv5_avgpool" else None, "image_size": image_size,
            "data": ref,
            "made_by": {"run": run_id, "data": data_digest,
                        "code": FP.features_code(recipe, ref["dataset"])["code"]}}


def _select(table, scale: str, row_name: str, seed: int | None, column: str | None):
    from repro.eval import PROTOCOL_INPUTS

    rows = {r.name: r for r in table.rows}
    trained = ", ".join(r.name for r in table.rows if table.row_recipe(r, scale)
                        and table.row_at(r, scale))
    if row_name not in rows:
        raise FeatureExportError(f"--row {row_name!r}: not a row of {table.path}; allowed: "
                                 f"{trained}")
    row = rows[row_name]
    if row.recipe is None and not row.recipe_by_scale:
        raise FeatureExportError(f"--row {row_name!r}: not rerun (no recipe), so no features; "
                                 f"allowed: {trained}")
    if table.row_recipe(row, scale) is None or not table.row_at(row, scale):
        raise FeatureExportError(f"--row {row_name!r}: not trained at scale {scale} (no "
                                 f"recipe there), so no features; allowed: {trained}")
    seeds = table.scales[scale]["seeds"]
    seed = seeds[0] if seed is None else seed
    if seed not in seeds:
        raise FeatureExportError(f"--seed {seed}: not a seed of scale {scale}; allowed: "
                                 f"{', '.join(map(str, seeds))}")
    cols = [c for c in table.columns if c.eval and c.id in row.evaluate
            and table.has_eval(c.eval, scale)
            and PROTOCOL_INPUTS[table.eval_at(c.eval, scale)["protocol"]] == "features"]
    if column is not None:
        if column not in [c.id for c in cols]:
            raise FeatureExportError(f"--eval {column!r}: not a feature column of row "
                                     f"{row_name!r}; allowed: "
                                     f"{', '.join(c.id for c in cols) or '(none)'}")
        cols = [c for c in cols if c.id == column]
    if not cols:
        raise FeatureExportError(f"--row {row_name!r}: no column evaluates saved features "
                                 "(its protocols need a model)")
    return row, seed, cols


def _eval_line(protocol: str, train: Path, test: Path, params: dict) -> str:
    import json

    words = ["repro", "eval", protocol, "--train", str(train), "--test", str(test)]
    for key, value in params.items():
        words += ["--param", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    return " ".join(shlex.quote(w) for w in words)


def run(args: argparse.Namespace) -> int:
    from repro import fingerprint as FP
    from repro import store, tables
    from repro.jobs import content_key
    from repro.launch.worker import runs_root  # no torch at import

    table, scale = args.table, args.scale  # loaded and checked by repro.cli._check_scale
    row, seed, cols = _select(table, scale, args.row, args.seed, args.column)
    jobs, _, _ = tables.stored_jobs(table, scale)
    pre = next(j for j in jobs if j.kind == "pretrain" and j.seed == seed
               and j.payload["recipe_id"] == table.row_recipe(row, scale))
    launch = f"`repro launch {args.spec} --scale {scale}`"
    rec = store.get(pre.key)
    feat_dir = runs_root() / pre.key / "features"
    if rec is None or not rec.get("run_id"):
        print(f"no stored pretraining run of row {row.name!r} seed {seed} (key {pre.key}), so "
              f"no cached features; {launch} trains it and its evaluation jobs cache them in "
              f"{feat_dir}")
        return 1
    missing = 0
    for col in cols:
        job = next(j for j in jobs if j.kind == "eval" and (row.name, col.id) in j.cells
                   and j.payload["pretrain_key"] == pre.key)
        ev = job.payload["eval"]
        paths = {}
        for part in ("train", "test"):
            ref = ev[part]
            digest = FP.data_fingerprints([ref])[FP.data_key(ref)]
            ident = cache_ident(ev, pre.payload["recipe"], part, rec["run_id"], digest)
            paths[part] = feat_dir / f"{content_key(ident)}.npz"
        absent = [p for p in paths.values() if not p.is_file()]
        if absent:
            missing += 1
            others = len(list(feat_dir.glob("*.npz"))) if feat_dir.is_dir() else 0
            print(f"{col.id}: no cached features for this checkout's code and data at "
                  f"{absent[0]} ({others} other file(s) in {feat_dir}); the table's evaluation "
                  f"jobs produce them: {launch}")
            continue
        if args.out is not None:
            try:
                args.out.mkdir(parents=True, exist_ok=True)
                for part in ("train", "test"):
                    dst = args.out / f"{col.id}_{part}.npz"
                    shutil.copyfile(paths[part], dst)
                    paths[part] = dst
            except OSError as err:
                raise FeatureExportError(f"--out {str(args.out)!r}: cannot be written: "
                                         f"{err.strerror or err}") from None
        print(f"{col.id}: train {paths['train']}")
        print(f"{col.id}: test  {paths['test']}")
        print(f"  {_eval_line(ev['protocol'], paths['train'], paths['test'], ev['params'])}")
    return 1 if missing else 0

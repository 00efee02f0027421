"""The ``repro`` command line. ``table``, ``list``, ``status``, ``curves`` and ``recipe`` import no
torch."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _cmd_launch(args) -> int:
    from repro import tables
    from repro.launch import launch
    table = args.table  # loaded and checked once, by _check_scale
    overrides = _resource_overrides(args)
    if args.max_parallel is not None and args.max_parallel < 1:
        raise UserError(f"--max-parallel: invalid value {args.max_parallel}; allowed: an "
                        "integer >= 1")
    seeds = None
    if args.seeds is not None:
        try:
            seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise UserError(f"--seeds: invalid value {args.seeds!r}; allowed: comma-separated "
                            f"seeds of scale {args.scale}") from None
    try:
        out = launch(table, args.scale, args.executor, dry_run=args.dry_run,
                     max_parallel=args.max_parallel, overrides=overrides,
                     resubmit_unknown=args.resubmit_unknown, keep_stale=args.keep_stale,
                     seeds=seeds)
    except ValueError as e:
        if str(e).startswith("--seeds"):
            raise UserError(str(e)) from None
        raise
    if args.dry_run or args.executor == "slurm":
        return 0
    path = tables.write(table, args.scale)
    print(f"wrote {path}")
    if out["failures"]:
        print(f"{len(out['failures'])} job(s) failed; rerun `repro launch` to retry them",
              file=sys.stderr)
        return 1
    return 0


def _cmd_status(args) -> int:
    from repro.launch.status import format_status, table_status
    table = args.table  # loaded and checked once, by _check_scale
    result = table_status(table, args.scale)
    print(format_status(table, args.scale, result))
    # non-zero while a cell cannot be served as current: failed, blocked or stale
    bad = sum(st.state in ("failed", "blocked", "stale") for st in result["statuses"].values())
    return 1 if bad else 0


def _cmd_table(args) -> int:
    from repro import tables
    table = args.table  # loaded and checked once, by _check_scale
    if args.stdout:
        print(tables.render(table, args.scale), end="")
    else:
        print(f"wrote {tables.write(table, args.scale)}")
    return 0


def _cmd_curves(args) -> int:
    from repro import curves
    table = args.table  # loaded and checked once, by _check_scale
    path, text = curves.write(table, args.scale, rows=args.row, out=args.out)
    print(text, end="")
    print(f"wrote {path}")
    return 0


def _cmd_list(args) -> int:
    if args.what == "methods":
        from repro.methods import METHODS as reg
    elif args.what == "protocols":
        from repro.eval import PROTOCOLS as reg
    elif args.what == "datasets":
        from repro.data import DATASETS as reg
    else:
        from repro.spec import find_specs

        for path in find_specs():
            print(path)
        return 0
    for name in reg.names():
        print(name)
    return 0


def _cmd_data(args) -> int:
    from repro.data import data_root

    root = Path(args.root) if args.root else data_root()
    if root.exists() and not root.is_dir():
        raise UserError(f"--root {str(root)!r}: not a directory; allowed: a data root folder")
    from repro.data.fixtures import FIXTURES  # imports torch(vision)

    try:
        path = FIXTURES[args.name](root)
    except OSError as err:
        raise UserError(f"cannot write the {args.name} fixture under {root}: "
                        f"{err.strerror or err}") from None
    print(f"wrote SYNTHETIC {args.name} fixture to {path}")
    return 0


# --flag -> resources key, type, help. Partition/account/qos/constraint apply to every job,
# --eval-* to evaluation jobs, the others to pretraining jobs.
RESOURCE_FLAGS = {
    "partition": (str, "Slurm partition (all jobs)"),
    "account": (str, "Slurm account (all jobs)"),
    "qos": (str, "Slurm QOS (all jobs)"),
    "constraint": (str, "Slurm constraint (all jobs)"),
    "nodes": (int, "nodes per pretraining job"),
    "gpus_per_node": (int, "GPUs (= processes) per node of a pretraining job"),
    "timeout_min": (int, "time limit of a pretraining job, minutes"),
    "cpus_per_task": (int, "CPUs per pretraining process"),
    "mem_gb": (float, "memory per node of a pretraining job, GB"),
    "signal_delay_s": (int, "seconds before the time limit a pretraining job is signalled "
                            "to requeue (default 90; the time limit must exceed it by 90 s)"),
    "eval_gpus_per_node": (int, "GPUs of an evaluation job"),
    "eval_timeout_min": (int, "time limit of an evaluation job, minutes"),
    "eval_cpus_per_task": (int, "CPUs of an evaluation job"),
    "eval_mem_gb": (float, "memory of an evaluation job, GB"),
    "eval_array_parallelism": (int, "evaluations of one pretraining run at once"),
    "eval_signal_delay_s": (int, "requeue signal lead of an evaluation job, seconds"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="repro", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    la = sub.add_parser("launch", help="run what a table is missing, then render it")
    la.add_argument("spec")
    la.add_argument("--scale", default="smoke")
    la.add_argument("--executor", default="local", choices=["debug", "local", "slurm"])
    la.add_argument("--dry-run", action="store_true", help="print the jobs, run nothing")
    la.add_argument("--max-parallel", type=int, default=None)
    la.add_argument("--seeds", default=None,
                    help="only these seeds of the scale, e.g. 0 or 0,1 (default: all)")
    res = la.add_argument_group("resources (override the spec's scales.<scale>.resources)")
    for key, (typ, text) in RESOURCE_FLAGS.items():
        res.add_argument("--" + key.replace("_", "-"), dest=key, type=typ, default=None,
                         help=text)
    la.add_argument("--keep-stale", action="store_true",
                    help="do not recompute records made by other code or data (see README)")
    la.add_argument("--resubmit-unknown", action="store_true",
                    help="slurm: submit again jobs that sacct does not know (e.g. purged)")
    la.set_defaults(fn=_cmd_launch)

    st = sub.add_parser("status", help="per cell: stored / running / pending / failed")
    st.add_argument("spec")
    st.add_argument("--scale", default="smoke")
    st.set_defaults(fn=_cmd_status)

    ta = sub.add_parser("table", help="render a table from stored results only")
    ta.add_argument("spec")
    ta.add_argument("--scale", default="smoke")
    ta.add_argument("--stdout", action="store_true")
    ta.set_defaults(fn=_cmd_table)

    cu = sub.add_parser("curves", help="plot the stored pretraining runs' per-epoch history "
                        "(loss, lr, every logged term) per row, from stored records only")
    cu.add_argument("spec")
    cu.add_argument("--scale", default="smoke")
    cu.add_argument("--row", action="append", default=None,
                    help="a trained row of the table (repeatable; default: every trained row)")
    cu.add_argument("--out", default=None,
                    help="the .png to write (default: results/<paper>/<table>.<scale>"
                         ".curves.png)")
    cu.set_defaults(fn=_cmd_curves)

    from repro import recipe_view

    rc = sub.add_parser("recipe", help="a row's fully resolved recipe at a scale, with the "
                        "source of every value (spec only)")
    rc.add_argument("spec")
    rc.add_argument("name", help="a row of the table, or a recipe id")
    rc.add_argument("--scale", default="paper")
    rc.add_argument("--strict", action="store_true",
                    help="exit 1 when a value has no source")
    rc.set_defaults(fn=recipe_view.run)

    li = sub.add_parser("list", help="list registered names")
    li.add_argument("what", choices=["methods", "protocols", "datasets", "tables"])
    li.set_defaults(fn=_cmd_list)

    da = sub.add_parser("data", help="data utilities")
    dsub = da.add_subparsers(dest="data_command", required=True)
    fx = dsub.add_parser("fixture", help="write a SYNTHETIC dataset in the real on-disk layout")
    fx.add_argument("name", choices=["cifar10", "voc07"])
    fx.add_argument("--root", default=None)
    fx.set_defaults(fn=_cmd_data)

    from repro.eval import command as eval_command

    ev = sub.add_parser("eval", help="run one protocol on saved features (.npz)")
    eval_command.add_arguments(ev)
    ev.set_defaults(fn=eval_command.run)

    from repro import feature_export

    fe = sub.add_parser("features", help="find (and copy) the cached features of a stored run "
                        "for `repro eval`")
    feature_export.add_arguments(fe)
    fe.set_defaults(fn=feature_export.run)
    return p


class UserError(ValueError):
    """A mistake in a command line; ``main`` prints it as one line and exits with 2."""


def _resource_overrides(args) -> dict:
    """The resource flags, each checked as a spec's resources are (no newline reaches an
    sbatch script)."""
    from repro.launch.resources import ResourceError, check_value

    overrides = {key: getattr(args, key) for key in RESOURCE_FLAGS}
    for key, value in overrides.items():
        try:
            if value is not None:
                check_value(key.removeprefix("eval_"), value)
        except ResourceError as err:
            raise UserError(f"--{key.replace('_', '-')}: {err.detail}") from None
    return overrides


def _check_scale(args) -> None:
    """Load the spec once (``args.table``); ``--scale`` must be one of its scales, checked
    before anything runs."""
    if not (hasattr(args, "spec") and hasattr(args, "scale")):
        return
    from repro.spec import load_table

    args.table = load_table(args.spec)
    scales = args.table.scales
    if args.scale not in scales:
        raise UserError(f"--scale {args.scale!r}: not a scale of {args.spec}; allowed: "
                        f"{', '.join(scales)}")


def main(argv: list[str] | None = None) -> int:
    from repro.curves import CurvesError
    from repro.data import MissingDataset
    from repro.feature_export import FeatureExportError
    from repro.launch.preflight import PreflightError
    from repro.launch.resources import ResourceError
    from repro.launch.status import SubmissionError, UnreadableSubmissions
    from repro.registry import UnknownName
    from repro.spec import SpecError, one_line

    args = build_parser().parse_args(argv)
    try:
        _check_scale(args)
        return args.fn(args)
    except (SpecError, UserError, ResourceError, MissingDataset, UnknownName,
            UnreadableSubmissions, SubmissionError, FeatureExportError, CurvesError,
            PreflightError) as err:
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `repro status ... | head`: stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())

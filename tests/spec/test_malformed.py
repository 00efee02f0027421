"""Malformed and hostile specs are refused when loaded: one ``SpecError`` line, in well under
2 s, naming the file, the field path (or the line / offset for what is not YAML) and the bad
value or what is allowed.

The cases mutate ``tests/fixtures/tiny_table.yaml`` (written as
``<tmp>/experiments/pcl/bad.yaml``, so its includes must stay under ``<tmp>/experiments``) or
replace it with hostile bytes: non-UTF-8, binary, a directory, a device, an alias bomb,
includes that leave ``experiments/``, duplicate keys, ...
"""

from __future__ import annotations

import copy
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from repro.spec import MAX_INCLUDES, MAX_SPEC_BYTES, SpecError, load_table

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "fixtures" / "tiny_table.yaml"
BASE = yaml.safe_load(TINY.read_text())
BASE_TEXT = yaml.safe_dump(BASE, sort_keys=False)
SPEC = "experiments/pcl/bad.yaml"

OPT = "recipe_defaults.smoke.optim"
DEF = "recipe_defaults.smoke"
MOCO = "recipes.moco.scales.smoke"
PCL = "recipes.pcl.scales.smoke"
PROBE = "evals.probe.scales.smoke"
RES = "scales.smoke.resources.pretrain"
MERGED = "(merged into recipes.moco.scales.smoke)"


def _keys(path: str) -> list:
    return [int(t[1:-1]) if t.startswith("[") else t for t in re.findall(r"\[\d+\]|[^.\[\]]+",
                                                                       path)]


def put(path: str, value: Any) -> Callable[[dict], None]:
    """A mutation: set the dotted ``path`` (``a.b[0].c``) of the spec to ``value``; missing
    mappings on the way are created."""
    *head, last = _keys(path)

    def mutate(raw: dict) -> None:
        node = raw
        for key in head:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
        node[last] = copy.deepcopy(value)
    return mutate


def drop(path: str) -> Callable[[dict], None]:
    *head, last = _keys(path)

    def mutate(raw: dict) -> None:
        node = raw
        for key in head:
            node = node[key]
        del node[last]
    return mutate


def both(*mutations: Callable[[dict], None]) -> Callable[[dict], None]:
    def mutate(raw: dict) -> None:
        for m in mutations:
            m(raw)
    return mutate


def laughs(levels: int = 9) -> list:
    """A "billion laughs" value: each level is 9 references to the one below (YAML aliases
    once dumped)."""
    node: list = ["lol"] * 9
    for _ in range(levels):
        node = [node] * 9
    return node


def nested(depth: int) -> list:
    node: list = []
    for _ in range(depth):
        node = [node]
    return node


@dataclass
class Case:
    id: str
    change: Callable[[dict], None] | str | bytes | None
    expect: tuple[str, ...]
    files: dict[str, Any] = field(default_factory=dict)  # extra files under <tmp>
    spec: str | None = None  # DIR / FIFO / a path: what is given as the spec instead


def C(id: str, change, *expect: str, files=None, spec=None) -> Case:
    return Case(id, change, expect, files or {}, spec)


OK_INCLUDE = {"experiments/pcl/shared/ok.yaml": "notes: [a shared note]\n"}
OUTSIDE = {"secret.yaml": "notes: [outside experiments]\n"}
SIMCLR_ROW = put(PCL, {"method": "simclr", "params": {"dim": 16},
                       "views": {"name": "simclr", "image_size": 16}})

CASES = [
    # --- the top level: keys, ids, types -----------------------------------------------
    C("top-unknown-key", put("colour", "red"), "colour: unknown key", "allowed: paper"),
    C("paper-unknown", put("paper", "simclr"), "paper: unknown paper 'simclr'",
      "allowed: carl, pauc, pcl, propos"),
    C("paper-int", put("paper", 3), "paper: unknown paper 3"),
    C("table-escapes-results", put("table", "../../x"), "table: invalid value '../../x'",
      "allowed: a string matching"),
    C("table-with-space", put("table", "Table 1"), "table: invalid value 'Table 1'"),
    C("table-empty", put("table", ""), "table: invalid value ''"),
    C("table-slash", put("table", "a/b"), "table: invalid value 'a/b'"),
    C("table-absolute", put("table", "/etc/cron.d/x"), "table: invalid value '/etc/cron.d/x'"),
    C("table-int", put("table", 42), "table: invalid value 42"),
    C("table-too-long", put("table", "t" * 65), "table: invalid value 'tttt"),
    C("title-list", put("title", ["x"]), "title: invalid value ['x']", "single-line string"),
    C("title-multiline", put("title", "a\nb"), "title: invalid value 'a\\nb'"),
    C("notes-string", put("notes", "one note"), "notes: invalid value 'one note'",
      "allowed: a list"),
    C("notes-numbers", put("notes", [1, 2]), "notes[0]: invalid value 1"),
    C("command-mapping", put("command", {"a": 1}), "command: invalid value {'a': 1}"),
    C("columns-mapping", put("columns", {"id": "x"}), "columns: invalid value {'id': 'x'}",
      "allowed: a list (non-empty)"),
    C("columns-empty", put("columns", []), "columns: invalid value []"),
    C("rows-string", put("rows", "x"), "rows: invalid value 'x'"),
    C("rows-of-strings", put("rows", ["a row"]), "rows[0]: expected a mapping, got str"),
    C("scales-list", put("scales", ["smoke"]), "scales: expected a mapping, got list"),
    C("scales-empty", put("scales", {}), "scales: invalid value {}",
      "allowed: a non-empty mapping"),
    C("recipes-list", put("recipes", [1]), "recipes: expected a mapping, got list [1]"),
    C("evals-string", put("evals", "x"), "evals: expected a mapping, got str 'x'"),
    C("rows-missing", drop("rows"), "rows: required key is missing"),
    C("title-missing", drop("title"), "title: required key is missing"),
    C("scales-missing", drop("scales"), "scales: required key is missing"),
    C("include-string", put("include", "shared/ok.yaml"), "include: invalid value",
      "allowed: a list"),
    C("include-int", put("include", [1]), "include[0]: invalid value 1"),
    # --- scales ---------------------------------------------------------------------------
    C("seeds-string", put("scales.smoke.seeds", "0,1"), "scales.smoke.seeds: invalid value "
      "'0,1'", "allowed: a list (non-empty, distinct"),
    C("seeds-duplicate", put("scales.smoke.seeds", [0, 0]), "scales.smoke.seeds[1]: "
      "duplicate 0"),
    C("seeds-empty", put("scales.smoke.seeds", []), "scales.smoke.seeds: invalid value []"),
    C("seeds-negative", put("scales.smoke.seeds", [-1]), "scales.smoke.seeds[0]: invalid "
      "value -1", "an integer in [0, "),
    C("seeds-bool", put("scales.smoke.seeds", [True]), "scales.smoke.seeds[0]: invalid "
      "value True"),
    C("seeds-float", put("scales.smoke.seeds", [1.5]), "seeds[0]: invalid value 1.5"),
    C("scale-id", put("scales", {"a/b": BASE["scales"]["smoke"]}), "scales.a/b: bad id 'a/b'"),
    C("data-policy", put("scales.smoke.data", "maybe"), "scales.smoke.data: unknown data "
      "policy 'maybe'", "allowed: real, download-or-fixture"),
    C("description-list", put("scales.smoke.description", ["x"]), "scales.smoke.description:"
      " invalid value ['x']"),
    C("scale-unknown-key", put("scales.smoke.seed", [0]), "scales.smoke.seed: unknown key",
      "allowed: seeds"),
    C("scale-list", put("scales.smoke", [1, 2]), "scales.smoke: expected a mapping, got list"),
    C("resources-unknown", put(RES, {"gpus": 4}), f"{RES}.gpus: unknown key",
      "gpus_per_node"),
    C("resources-kind", put("scales.smoke.resources", {"gpu": {}}),
      "scales.smoke.resources.gpu: unknown key", "allowed: pretrain, eval"),
    C("resources-list", put(RES, [1]), f"{RES}: expected a mapping, got list"),
    C("partition-newline", put(RES, {"partition": "gpu\n#SBATCH --foo"}),
      f"{RES}.partition: invalid value 'gpu\\n#SBATCH --foo'", "allowed: names"),
    C("partition-semicolon", put(RES, {"partition": "gpu; rm -rf /"}),
      f"{RES}.partition: invalid value 'gpu; rm -rf /'"),
    C("partition-hash", put(RES, {"partition": "a#b"}), f"{RES}.partition: invalid value"),
    C("partition-backslash", put(RES, {"partition": "a\\b"}), f"{RES}.partition: invalid"),
    C("partition-int", put(RES, {"partition": 7}), f"{RES}.partition: invalid value 7"),
    C("account-substitution", put(RES, {"account": "$(id)"}),
      f"{RES}.account: invalid value '$(id)'"),
    C("qos-backtick", put(RES, {"qos": "`id`"}), f"{RES}.qos: invalid value '`id`'"),
    C("constraint-space", put(RES, {"constraint": "a b"}), f"{RES}.constraint: invalid value "
      "'a b'", "no blanks"),
    C("constraint-quote", put(RES, {"constraint": "x'y"}), f"{RES}.constraint: invalid"),
    C("constraint-cr", put(RES, {"constraint": "a\rb"}), f"{RES}.constraint: invalid value "
      "'a\\rb'"),
    C("nodes-zero", put(RES, {"nodes": 0}), f"{RES}.nodes: invalid value 0",
      "allowed: an integer >= 1"),
    C("nodes-string", put(RES, {"nodes": "2"}), f"{RES}.nodes: invalid value '2'"),
    C("gpus-negative", put(RES, {"gpus_per_node": -1}), f"{RES}.gpus_per_node: invalid value "
      "-1", "an integer >= 0"),
    C("mem-zero", put(RES, {"mem_gb": 0}), f"{RES}.mem_gb: invalid value 0"),
    C("mem-nan", put(RES, {"mem_gb": float("nan")}), f"{RES}.mem_gb: invalid value nan"),
    C("timeout-float", put(RES, {"timeout_min": 1.5}), f"{RES}.timeout_min: invalid value 1.5"),
    C("cpus-bool", put(RES, {"cpus_per_task": True}), f"{RES}.cpus_per_task: invalid value "
      "True"),
    C("array-zero", put("scales.smoke.resources.eval", {"array_parallelism": 0}),
      "scales.smoke.resources.eval.array_parallelism: invalid value 0"),
    # --- recipe_defaults and recipes --------------------------------------------------------
    C("defaults-unknown-scale", put("recipe_defaults.paper", {}), "recipe_defaults.paper: "
      "unknown scale 'paper'", "allowed: smoke"),
    C("defaults-string", put(DEF, "x"), f"{DEF}: expected a mapping, got str 'x'"),
    C("epochs-zero", put(f"{OPT}.epochs", 0), f"{OPT}.epochs {MERGED}: invalid value 0",
      "allowed: an integer >= 1"),
    C("epochs-negative", put(f"{OPT}.epochs", -3), f"{OPT}.epochs {MERGED}: invalid value -3"),
    C("epochs-float", put(f"{OPT}.epochs", 2.5), f"{OPT}.epochs {MERGED}: invalid value 2.5"),
    C("epochs-in-recipe", put(f"{MOCO}.optim", {"epochs": 0}), f"{MOCO}.optim.epochs: invalid "
      "value 0"),
    C("batch-zero", put(f"{OPT}.batch_size", 0), f"{OPT}.batch_size {MERGED}: invalid value 0"),
    C("batch-string", put(f"{OPT}.batch_size", "64"), "optim.batch_size", "invalid value '64'"),
    C("lr-zero", put(f"{OPT}.lr", 0), f"{OPT}.lr {MERGED}: invalid value 0",
      "a finite number > 0"),
    C("lr-negative", put(f"{OPT}.lr", -0.1), "optim.lr", "invalid value -0.1"),
    C("lr-inf", put(f"{OPT}.lr", float("inf")), "optim.lr", "invalid value inf"),
    C("lr-nan", put(f"{OPT}.lr", float("nan")), "optim.lr", "invalid value nan"),
    C("lr-string", put(f"{OPT}.lr", "0.1"), "optim.lr", "invalid value '0.1'"),
    C("optim-misspelt-key", put(f"{OPT}.lrr", 0.1), f"{OPT}.lrr {MERGED}: unknown key",
      "allowed: name, lr, batch_size"),
    C("optimiser-unknown", put(f"{OPT}.name", "adam"), "optim.name", "unknown optimiser "
      "'adam'", "allowed: sgd, lars"),
    C("schedule-unknown", put(f"{OPT}.schedule", "linear"), "optim.schedule", "unknown "
      "schedule 'linear'", "step, cosine, constant"),
    C("momentum-one", put(f"{OPT}.momentum", 1.0), "optim.momentum", "invalid value 1.0",
      "[0, 1)"),
    C("weight-decay-negative", put(f"{OPT}.weight_decay", -1), "optim.weight_decay",
      "invalid value -1"),
    C("milestones-with-cosine", put(f"{OPT}.milestones", [1]), "optim.milestones",
      "not used by schedule 'cosine'", "allowed: milestones only with schedule: step"),
    C("milestones-not-increasing", both(put(f"{OPT}.schedule", "step"),
                                        put(f"{OPT}.milestones", [1, 1])),
      "optim.milestones[1]", "not increasing 1"),
    C("milestone-after-run", both(put(f"{OPT}.schedule", "step"),
                                  put(f"{OPT}.milestones", [5])),
      "optim.milestones[0]", "milestone never reached 5", "allowed: epochs < 2"),
    C("warmup-longer-than-run", put(f"{OPT}.warmup_epochs", 10), "optim.warmup_epochs",
      "longer than the run: 10", "allowed: at most 2"),
    C("final-lr-fraction", put(f"{OPT}.final_lr_fraction", 2), "optim.final_lr_fraction",
      "invalid value 2"),
    C("warmup-start-without-warmup", put(f"{OPT}.warmup_start_lr", 0.01),
      "optim.warmup_start_lr", "no warm-up to start: 0.01",
      "allowed: warmup_start_lr only with warmup_epochs > 0"),
    C("gamma-with-cosine", put(f"{OPT}.gamma", 0.1), "optim.gamma", "not used by schedule"),
    C("optim-lr-missing", drop(f"{OPT}.lr"), f"{MOCO}.optim.lr: required key is missing"),
    C("optim-missing", drop(OPT), f"{MOCO}.optim: required key is missing"),
    C("arch-unknown", put(f"{DEF}.backbone.arch", "resnet9000"), "backbone.arch",
      "unknown architecture 'resnet9000'", "resnet18_tiny"),
    C("cifar-stem-string", put(f"{DEF}.backbone.cifar_stem", "yes"), "backbone.cifar_stem",
      "invalid value 'yes'", "allowed: true or false"),
    C("backbone-unknown-key", put(f"{DEF}.backbone.depth", 50), "backbone.depth",
      "unknown key", "allowed: arch, cifar_stem"),
    C("backbone-no-arch", drop(f"{DEF}.backbone.arch"), f"{MOCO}.backbone.arch: required"),
    C("views-unknown", put(f"{MOCO}.views.name", "moco_v9"), f"{MOCO}.views.name: unknown "
      "view recipe 'moco_v9'", "moco_v2"),
    C("image-size-zero", put(f"{MOCO}.views.image_size", 0), f"{MOCO}.views.image_size: "
      "invalid value 0"),
    C("views-unknown-key", put(f"{MOCO}.views.size", 16), f"{MOCO}.views.size: unknown key",
      "allowed: name, image_size, options"),
    C("views-n-views-zero", put(f"{MOCO}.views.options", {"n_views": 0}),
      f"{MOCO}.views.options.n_views: invalid value 0"),
    C("views-options-unknown", put(f"{MOCO}.views.options", {"colour": 1}),
      f"{MOCO}.views.options.colour: unknown key", "n_views, blur, dataset"),
    C("dataset-unknown", put(f"{DEF}.data.dataset", "mnist"), "data.dataset",
      "unknown dataset 'mnist'", "digits"),
    C("split-unknown", put(f"{DEF}.data.split", "validation"), "data.split",
      "unknown split of digits 'validation'", "allowed: train, test"),
    C("subset-zero", put(f"{DEF}.data.subset", 0), "data.subset", "invalid value 0"),
    C("subset-below-batch", put(f"{DEF}.data.subset", 10), f"{OPT}.batch_size {MERGED}",
      "larger than the training set: 64", "at most data.subset (10)"),
    C("precision-unknown", put(f"{DEF}.runtime.precision", "fp8"), "runtime.precision",
      "unknown precision 'fp8'", "allowed: fp32, bf16, fp16"),
    C("threads-zero", put(f"{DEF}.runtime.threads", 0), "runtime.threads", "invalid value 0"),
    C("device-unknown", put(f"{DEF}.runtime.device", "gpu"), "runtime.device",
      "invalid value 'gpu'"),
    C("runtime-unknown-key", put(f"{DEF}.runtime.foo", 1), "runtime.foo", "unknown key"),
    C("method-unknown", put(f"{MOCO}.method", "mocov9"), f"{MOCO}.method: unknown method "
      "'mocov9'", "allowed: byol"),
    C("method-missing", drop(f"{MOCO}.method"), f"{MOCO}.method: required key is missing"),
    C("param-misspelt", put(f"{MOCO}.params.queue_sise", 256), f"{MOCO}.params.queue_sise: "
      "unknown parameter of method moco", "allowed: dim, queue_size"),
    C("param-type", put(f"{MOCO}.params.momentum", "high"), f"{MOCO}.params.momentum: "
      "invalid value 'high'", "a finite number"),
    C("param-range", put(f"{MOCO}.params.momentum", 1.5), f"{MOCO}.params.momentum: invalid "
      "value 1.5", "[0, 1]"),
    C("param-str-type", put(f"{MOCO}.params.head", 3), f"{MOCO}.params.head: invalid value 3"),
    C("param-list-type", put(f"{PCL}.params.num_clusters", "8"), f"{PCL}.params.num_clusters:"
      " invalid value '8'", "a list of: an integer"),
    C("param-nan", put(f"{MOCO}.params.temperature", float("nan")), f"{MOCO}.params."
      "temperature: invalid value nan"),
    C("params-list", put(f"{MOCO}.params", [1]), f"{MOCO}.params: expected a mapping"),
    C("recipe-list", put("recipes.moco", [1]), "recipes.moco: expected a mapping, got list"),
    C("recipe-unknown-scale", put("recipes.moco.scales.paper", {}), "recipes.moco.scales."
      "paper: unknown scale 'paper'", "allowed: smoke"),
    C("recipe-extra-key", put("recipes.moco.notes", "x"), "recipes.moco.notes: unknown key",
      "allowed: scales"),
    C("recipe-missing-scale", put("recipes.moco.scales", {}), ".recipe: recipe 'moco' has no "
      "entry for scale 'smoke'"),
    C("recipe-id", put("recipes", {"bad id": BASE["recipes"]["moco"]}),
      "recipes.bad id: bad id 'bad id'"),
    C("recipe-body-string", put(MOCO, "moco"), f"{MOCO}: expected a mapping, got str"),
    # --- evals ------------------------------------------------------------------------------
    C("protocol-unknown", put("evals.probe.protocol", "telepathy"), "evals.probe.protocol: "
      "unknown protocol 'telepathy'", "linear_probe"),
    C("encoder-unknown", put("evals.probe.encoder", "key"), "evals.probe.encoder: unknown "
      "encoder 'key'", "momentum"),
    C("encoder-not-of-method", both(SIMCLR_ROW, put("evals.probe.encoder", "momentum")),
      "evals.probe.encoder: not an encoder of method simclr (row 'PCL'): 'momentum'",
      "allowed: query"),
    C("layer-unknown", put(f"{PROBE}.features.layer", "conv4"), f"{PROBE}.features.layer: "
      "unknown feature layer 'conv4'", "pooled, conv5_avgpool"),
    C("pool-with-pooled", put(f"{PROBE}.features.pool", 2), f"{PROBE}.features.pool: not "
      "used by layer 'pooled' 2"),
    C("feature-size-zero", put(f"{PROBE}.features.image_size", 0), f"{PROBE}.features."
      "image_size: invalid value 0"),
    C("features-unknown-key", put(f"{PROBE}.features.colour", 1), f"{PROBE}.features.colour:"
      " unknown key", "layer, pool, image_size"),
    C("eval-epochs-zero", put(f"{PROBE}.params.epochs", 0), f"{PROBE}.params.epochs: invalid "
      "value 0"),
    C("eval-lr-negative", put(f"{PROBE}.params.lr", -1), f"{PROBE}.params.lr: invalid value "
      "-1"),
    C("eval-param-unknown", put(f"{PROBE}.params.bogus", 1), f"{PROBE}.params.bogus: unknown "
      "parameter of protocol linear_probe", "allowed: epochs, lr"),
    C("eval-param-type", put(f"{PROBE}.params.normalize", "yes"), f"{PROBE}.params.normalize"
      ": invalid value 'yes'", "true or false"),
    C("eval-param-required", drop(f"{PROBE}.params.lr"), f"{PROBE}.params: missing required "
      "parameter(s) lr of protocol linear_probe"),
    C("eval-dataset-unknown", put(f"{PROBE}.train.dataset", "mnist"), f"{PROBE}.train.dataset"
      ": unknown dataset 'mnist'"),
    C("eval-split-unknown", put(f"{PROBE}.test.split", "validation"), f"{PROBE}.test.split: "
      "unknown split of digits 'validation'"),
    C("eval-subset-negative", put(f"{PROBE}.test.subset", -5), f"{PROBE}.test.subset: invalid"
      " value -5"),
    C("eval-test-missing", drop(f"{PROBE}.test"), f"{PROBE}.test: required key is missing"),
    C("eval-scales-empty", put("evals.probe.scales", {}), "evals.probe.scales: invalid value "
      "{}"),
    C("eval-unknown-scale", put("evals.probe.scales.paper", BASE["evals"]["probe"]["scales"]
                                ["smoke"]), "evals.probe.scales.paper: unknown scale 'paper'"),
    C("eval-scale-protocol", put(f"{PROBE}.protocol", "telepathy"), f"{PROBE}.protocol: "
      "unknown protocol 'telepathy'"),
    C("eval-string", put("evals.probe", "x"), "evals.probe: expected a mapping, got str"),
    C("eval-unknown-key", put("evals.probe.metric", "top1"), "evals.probe.metric: unknown key",
      "allowed: protocol, encoder, features, scales"),
    # --- columns and rows -------------------------------------------------------------------
    C("column-eval-unknown", put("columns[1].eval", "nope"), "columns[1].eval: unknown eval "
      "'nope'", "allowed: probe"),
    C("column-metric-missing", drop("columns[1].metric"), "columns[1].metric: required with "
      "'eval'"),
    C("column-metric-without-eval", put("columns[0].metric", "top1"), "columns[0].metric: "
      "not used without eval: 'top1'"),
    C("column-digits-negative", put("columns[1].digits", -1), "columns[1].digits: invalid "
      "value -1"),
    C("column-scale-factor-zero", put("columns[1].scale_factor", 0), "columns[1].scale_factor"
      ": invalid value 0"),
    C("column-duplicate-id", put("columns[1].id", "arch"), "columns[1].id: duplicate 'arch'"),
    C("column-label-missing", drop("columns[0].label"), "columns[0].label: required key"),
    C("column-id-space", put("columns[0].id", "a b"), "columns[0].id: invalid value 'a b'"),
    C("row-recipe-unknown", put("rows[1].recipe", "byol_x"), "rows[1].recipe: unknown recipe "
      "'byol_x'", "allowed: moco, pcl"),
    C("row-unknown-column", put("rows[1].paper.imagenet", "1.0"), "rows[1].paper.imagenet: "
      "unknown column 'imagenet'", "allowed: arch, probe"),
    C("row-cell-list", put("rows[1].paper.probe", [1, 2]), "rows[1].paper.probe: invalid "
      "value [1, 2]"),
    C("row-evaluate-without-recipe", put("rows[0].evaluate", ["probe"]), "rows[0].evaluate: "
      "not used without recipe: ['probe']"),
    C("row-evaluate-descriptive", put("rows[1].evaluate", ["arch"]), "rows[1].evaluate[0]: "
      "not a result column: 'arch'", "allowed: probe"),
    C("row-evaluate-duplicate", put("rows[1].evaluate", ["probe", "probe"]),
      "rows[1].evaluate[1]: duplicate 'probe'"),
    C("row-name-twice", put("rows[2].name", "MoCo"), "rows[2].name: used twice: 'MoCo'"),
    C("row-name-missing", drop("rows[0].name"), "rows[0].name: required key is missing"),
    C("row-name-multiline", put("rows[0].name", "a\nb"), "rows[0].name: invalid value "
      "'a\\nb'"),
    C("row-info-unknown", put("rows[1].info.depth", "50"), "rows[1].info.depth: unknown "
      "column 'depth'"),
    C("row-unknown-key", put("rows[0].colour", "red"), "rows[0].colour: unknown key"),
    C("row-nan-cell", put("rows[0].paper.probe", float("nan")), "rows[0].paper.probe: "
      "invalid value nan"),
    C("row-origin-missing", drop("rows[0].origin"), "rows[0].origin: required in a row "
      "without recipe", "allowed: quoted (", "or paper ("),
    C("row-origin-unknown", put("rows[0].origin", "own"), "rows[0].origin: unknown row origin "
      "'own'", "allowed: quoted, paper"),
    C("row-origin-with-recipe", put("rows[1].origin", "quoted"), "rows[1].origin: not used "
      "with recipe: 'quoted'", "allowed: origin only in rows without a recipe"),
    C("row-reason-with-quoted", put("rows[0].reason", "why"), "rows[0].reason: not used with "
      "origin 'quoted': 'why'", "allowed: reason only with origin: paper"),
    # --- not YAML, not text, not a file ------------------------------------------------------
    C("not-utf8", BASE_TEXT.encode() + b"notes: ['\xff\xfe']\n", "not UTF-8 text (byte 0xff "
      "at offset"),
    C("binary", bytes(range(256)) * 4, "not UTF-8 text (byte 0x80 at offset 128)"),
    C("nul-character", BASE_TEXT + "notes: ['a\x00b']\n", "character '\\x00' at offset",
      "allowed: printable characters"),
    C("directory", None, "not a regular file (a directory)", spec="DIR"),
    C("device", None, "/dev/zero: not a regular file (a device, pipe or socket)",
      spec="/dev/zero"),
    C("fifo", None, "not a regular file (a device, pipe or socket)", spec="FIFO"),
    C("symlink-to-device", None, "not a regular file (a device", spec="LINK:/dev/zero"),
    C("missing-file", None, "no such file", spec="MISSING"),
    C("oversized", BASE_TEXT + "#" * (MAX_SPEC_BYTES + 1), f"larger than {MAX_SPEC_BYTES} "
      "bytes"),
    C("empty", "", "empty file", "allowed: a YAML mapping"),
    C("top-list", "- a\n- b\n", "<top>: expected a mapping, got list ['a', 'b']"),
    C("top-scalar", "hello\n", "<top>: expected a mapping, got str 'hello'"),
    C("syntax", "paper: [unclosed\n", "not valid YAML: line 2, column 1",
      "did not find expected"),
    C("python-tag", "paper: !!python/object/apply:os.system ['echo pwned']\n",
      "not valid YAML: line 1, column 8", "python/object/apply:os.system"),
    C("duplicate-top-key", BASE_TEXT + "title: again\n", "title: duplicate key; first at line"),
    C("duplicate-nested-key", "paper: pcl\nrecipes:\n  moco:\n    scales:\n      smoke:\n"
      "        params: {dim: 1, dim: 2}\n", "recipes.moco.scales.smoke.params.dim: duplicate "
      "key; first at line 6 (line 6"),
    C("alias-bomb-in-cell", put("rows[0].paper.probe", laughs()), "rows[0].paper.probe",
      "more than 100000 values once aliases are expanded"),
    C("alias-bomb-in-params", put(f"{MOCO}.params.dim", laughs()), f"{MOCO}.params.dim",
      "more than 100000 values once aliases are expanded"),
    C("recursive-alias", "paper: pcl\nnotes: &a [*a]\n", "notes[0]: recursive alias (line 2"),
    C("merge-key", "paper: pcl\nbase: &b {x: 1}\nother:\n  <<: *b\n", "other: merge keys "
      "('<<') are not supported (line 4"),
    C("deep-nesting", put("rows[0].info.arch", nested(40)), "rows[0].info.arch[0]",
      "nested deeper than 32 levels"),
    C("int-key", "paper: pcl\nscales:\n  1: {seeds: [0]}\n", "scales: key '1' is not a "
      "string"),
    C("bool-key", "paper: pcl\non: 1\n", "<top>: key 'on' is not a string"),
    C("collection-key", "paper: pcl\n? [a]\n: b\n", "<top>: key a collection is not a string"),
    C("two-documents", "paper: pcl\n---\npaper: pcl\n", "not valid YAML: line 2, column 1",
      "another document"),
    # --- includes -----------------------------------------------------------------------------
    C("include-absolute-device", put("include", ["/dev/zero"]), "include[0]: absolute path "
      "'/dev/zero'", "allowed: a path relative to the spec"),
    C("include-outside", put("include", ["../../secret.yaml"]), "include[0]: "
      "'../../secret.yaml' resolves outside", "allowed: files under", files=OUTSIDE),
    C("include-passwd", put("include", ["../../../../../../../etc/passwd"]), "include[0]:",
      "resolves outside"),
    C("include-missing", put("include", ["shared/missing.yaml"]), "shared/missing.yaml "
      "(included from", "no such file"),
    C("include-directory", put("include", ["shared"]), "shared (included from",
      "not a regular file (a directory)", files=OK_INCLUDE),
    C("include-symlink-outside", put("include", ["shared/link.yaml"]), "include[0]: "
      "'shared/link.yaml' resolves outside",
      files={"secret.yaml": "notes: []\n",
             "experiments/pcl/shared/link.yaml": ("LINK", "secret.yaml")}),
    C("include-fifo", put("include", ["shared/pipe.yaml"]), "shared/pipe.yaml (included from",
      "not a regular file", files={"experiments/pcl/shared/pipe.yaml": "FIFO"}),
    C("include-oversized", put("include", ["shared/big.yaml"]), "shared/big.yaml (included",
      "larger than", files={"experiments/pcl/shared/big.yaml": "#" * (MAX_SPEC_BYTES + 1)}),
    C("include-not-utf8", put("include", ["shared/latin1.yaml"]), "shared/latin1.yaml "
      "(included from", "not UTF-8", files={"experiments/pcl/shared/latin1.yaml":
                                            "notes: ['caf\xe9']\n".encode("latin-1")}),
    C("include-defines-paper", put("include", ["shared/paper.yaml"]), "shared/paper.yaml "
      "(included from", "paper: unknown key", "allowed: recipes",
      files={"experiments/pcl/shared/paper.yaml": "paper: pcl\n"}),
    C("include-bad-recipe", both(put("include", ["shared/recipes.yaml"]), drop("recipes"),
                                 put("rows", BASE["rows"][:2])),
      "shared/recipes.yaml (included from", "recipes.moco.scales.smoke.optim.epochs: "
      "invalid value 0", files={"experiments/pcl/shared/recipes.yaml": yaml.safe_dump(
          {"recipes": {"moco": {"scales": {"smoke": {**BASE["recipes"]["moco"]["scales"]
                                                     ["smoke"], "optim": {"epochs": 0}}}}}})}),
    C("include-duplicate-key", put("include", ["shared/dup.yaml"]), "shared/dup.yaml "
      "(included from", "notes: duplicate key",
      files={"experiments/pcl/shared/dup.yaml": "notes: []\nnotes: []\n"}),
    C("include-list", put("include", ["shared/list.yaml"]), "shared/list.yaml (included",
      "<top>: expected a mapping, got list",
      files={"experiments/pcl/shared/list.yaml": "- 1\n"}),
    C("include-alias-bomb", put("include", ["shared/bomb.yaml"]), "shared/bomb.yaml "
      "(included from", "once aliases are expanded",
      files={"experiments/pcl/shared/bomb.yaml": yaml.safe_dump({"notes": laughs()})}),
    C("string-notes-next-to-include", both(put("include", ["shared/ok.yaml"]),
                                           put("notes", "a string")),
      "notes: invalid value 'a string'", files=OK_INCLUDE),
    C("include-too-many", put("include", [f"shared/{i}.yaml" for i in range(MAX_INCLUDES + 1)]),
      "include: invalid value", f"at most {MAX_INCLUDES}"),
    C("include-twice", put("include", ["shared/ok.yaml", "shared/ok.yaml"]),
      "include[1]: duplicate 'shared/ok.yaml'", files=OK_INCLUDE),
    # --- extends ------------------------------------------------------------------------------
    C("extends-unknown", put("recipes.moco2", {"extends": "mocoo"}), "recipes.moco2.extends: "
      "unknown recipe 'mocoo'", "allowed: moco, pcl"),
    C("extends-cycle", both(put("recipes.a", {"extends": "b"}), put("recipes.b", {"extends": "a"})),
      "recipes.b.extends: cycle a -> b -> a", "allowed: a chain of recipes that ends"),
    C("extends-itself", put("recipes.a", {"extends": "a"}), "recipes.a.extends: cycle a -> a"),
    C("extends-misspelt", put("recipes.moco2", {"extend": "moco"}), "recipes.moco2.extend: "
      "unknown key", "allowed: scales, extends, grid"),
    C("extends-list", put("recipes.moco2", {"extends": ["moco"]}), "recipes.moco2.extends: "
      "invalid value ['moco']"),
    C("extends-pattern-without-grid", put("recipes.moco2", {"extends": "moco_{x}"}),
      "recipes.moco2.extends: invalid value 'moco_{x}'", "{axis} only in a recipe with grid"),
    C("extends-nor-scales", put("recipes.moco2", {}), "recipes.moco2.scales: required key is "
      "missing (or extends)"),
    C("extends-bad-override", put("recipes.moco2", {"extends": "moco", "scales": {"smoke": {
        "optim": {"lr": 0}}}}), "recipes.moco2.scales.smoke.optim.lr: invalid value 0"),
    C("extends-override-breaks-inherited", put("recipes.moco2", {"extends": "moco", "scales": {
        "smoke": {"data": {"subset": 10}}}}), f"{OPT}.batch_size (merged into recipes.moco2."
      "scales.smoke): larger than the training set: 64"),
    # --- grids -----------------------------------------------------------------------------
    C("grid-pattern-lacks-axis", put("recipes.moco_q", {"extends": "moco", "grid": {"q": {
        "set": "params.queue_size", "values": [64]}}}), "recipes.moco_q: bad grid pattern",
      "allowed: an id pattern naming each grid axis once: {q}"),
    C("grid-pattern-unknown-axis", put("recipes.moco_{q}_{k}", {"extends": "moco", "grid": {
        "q": {"a": {}}}}), "recipes.moco_{q}_{k}: bad grid pattern"),
    C("grid-extends-unknown-axis", put("recipes.moco_{q}", {"extends": "x_{k}", "grid": {
        "q": {"a": {}}}}), "recipes.moco_{q}.extends: unknown axis {k} in 'x_{k}'"),
    C("grid-axis-empty", put("recipes.moco_{q}", {"extends": "moco", "grid": {"q": {}}}),
      "recipes.moco_{q}.grid.q: invalid value {}", "allowed: a non-empty mapping"),
    C("grid-axis-string", put("recipes.moco_{q}", {"extends": "moco", "grid": {"q": "64"}}),
      "recipes.moco_{q}.grid.q: expected a mapping, got str"),
    C("grid-axis-id", put("recipes.moco_{q}", {"extends": "moco", "grid": {"q-q": {"a": {}}}}),
      "recipes.moco_{q}.grid.q-q: bad id 'q-q'", "allowed: ids matching [A-Za-z]"),
    C("grid-set-without-values", put("recipes.moco_{q}", {"extends": "moco", "grid": {"q": {
        "set": "params.queue_size"}}}), "recipes.moco_{q}.grid.q.values: required key"),
    C("grid-set-bad-path", put("recipes.moco_{q}", {"extends": "moco", "grid": {"q": {
        "set": "params..queue_size", "values": [64]}}}), "recipes.moco_{q}.grid.q.set: invalid "
      "value 'params..queue_size'"),
    C("grid-set-unknown-scale", put("recipes.moco_{q}", {"extends": "moco", "grid": {"q": {
        "set": {"paper": "params.queue_size"}, "values": [64]}}}), "recipes.moco_{q}.grid.q.set."
      "paper: unknown scale 'paper'", "allowed: smoke"),
    C("grid-values-duplicate", put("recipes.moco_{q}", {"extends": "moco", "grid": {"q": {
        "set": "params.queue_size", "values": [64, 64]}}}), "recipes.moco_{q}.grid.q.values[1]:"
      " duplicate 64"),
    C("grid-value-not-an-id", put("recipes.moco_t{t}", {"extends": "moco", "grid": {"t": {
        "set": "params.temperature", "values": [0.1]}}}), "recipes.moco_t{t}: expands to a bad "
      "id 'moco_t0.1'", "needs a name: values: {<name>: <value>}"),
    C("grid-swept-value-invalid", put("recipes.moco_t{t}", {"extends": "moco", "grid": {"t": {
        "set": "params.temperature", "values": {"hot": -1}}}}), "recipes.moco_t{t}.grid.t.values."
      "hot (merged into recipes.moco_thot.scales.smoke): invalid value -1"),
    C("grid-value-misspelt-key", put("recipes.moco_{v}", {"extends": "moco", "grid": {"v": {
        "a": {"smoke": {"optim": {"lrr": 0.1}}}}}}), "recipes.moco_{v}.grid.v.a.smoke.optim.lrr "
      "(merged into recipes.moco_a.scales.smoke): unknown key", "allowed: name, lr"),
    C("grid-value-unknown-scale", put("recipes.moco_{v}", {"extends": "moco", "grid": {"v": {
        "a": {"paper": {}}}}}), "recipes.moco_{v}.grid.v.a.paper: unknown scale 'paper'"),
    C("grid-value-name", put("recipes.moco_{v}", {"extends": "moco", "grid": {"v": {
        "a b": {}}}}), "recipes.moco_{v}.grid.v.a b: bad id 'a b'"),
    C("grid-defines-id-twice", put("recipes.{v}", {"extends": "moco", "grid": {"v": {
        "pcl": {}}}}), "recipes.{v}: defines recipe 'pcl' again (also recipes.pcl)"),
    C("grid-too-large", put("recipes.m{a}_{b}", {"extends": "moco", "grid": {
        "a": {"set": "params.dim", "values": list(range(1, 41))},
        "b": {"set": "params.queue_size", "values": list(range(1, 41))}}}),
      "recipes.m{a}_{b}.grid: too many recipes", "allowed: at most 1000 combinations"),
    # --- file_defaults (apply to the recipes of the file that writes them) -----------------
    C("file-defaults-misspelt", put("file_default", {}), "file_default: unknown key",
      "file_defaults"),
    C("file-defaults-unknown-scale", both(put("file_defaults", BASE["recipe_defaults"]),
                                          drop("recipe_defaults"), put("file_defaults.paper", {})),
      "file_defaults.paper: unknown scale 'paper'", "allowed: smoke"),
    C("file-defaults-string", put("file_defaults.smoke", "x"), "file_defaults.smoke: expected a "
      "mapping, got str"),
    C("file-defaults-misspelt-key", both(put("file_defaults", BASE["recipe_defaults"]),
                                         drop("recipe_defaults"),
                                         put("file_defaults.smoke.optim.lrr", 0.1)),
      "file_defaults.smoke.optim.lrr (merged into recipes.moco.scales.smoke): unknown key",
      "allowed: name, lr"),
    C("file-defaults-reach-nothing", put("include", ["shared/d.yaml"]), "shared/d.yaml "
      "(included from", "file_defaults.smoke: reaches no recipe",
      files={"experiments/pcl/shared/d.yaml": "file_defaults: {smoke: {optim: {lr: 0.1}}}\n"}),
    C("file-defaults-of-an-include", both(put("include", ["shared/d.yaml"]),
                                          put("rows[1].recipe", "m3")), "shared/d.yaml "
      "(included from", "file_defaults.smoke.optim.lr (merged into recipes.m3.scales.smoke): "
      "invalid value 0", files={"experiments/pcl/shared/d.yaml": (
          "file_defaults: {smoke: {optim: {lr: 0}}}\n"
          "recipes: {m3: {scales: {smoke: {method: moco, views: {name: moco_v1, image_size: "
          "16}}}}}\n")}),
]


def _write(path: Path, content: Any, root: Path) -> None:
    """content: text, bytes, "FIFO", or ("LINK", target relative to ``root``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if content == "FIFO":
        os.mkfifo(path)
    elif isinstance(content, tuple):
        path.symlink_to(root / content[1])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def _materialise(tmp_path: Path, case: Case) -> Path:
    spec = tmp_path / SPEC
    spec.parent.mkdir(parents=True)
    for rel, content in case.files.items():
        _write(tmp_path / rel, content, tmp_path)
    if case.spec == "DIR":
        spec.mkdir()
    elif case.spec == "FIFO":
        os.mkfifo(spec)
    elif case.spec == "MISSING":
        pass
    elif case.spec and case.spec.startswith("LINK:"):
        spec.symlink_to(case.spec[5:])
    elif case.spec:
        return Path(case.spec)
    elif callable(case.change):
        raw = copy.deepcopy(BASE)
        case.change(raw)
        spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    else:
        _write(spec, case.change, tmp_path)
    return spec


def test_there_are_at_least_100_distinct_cases():
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_spec_is_refused_with_one_line(tmp_path, case):
    spec = _materialise(tmp_path, case)
    start = time.perf_counter()
    with pytest.raises(SpecError) as err:
        load_table(spec)
    elapsed = time.perf_counter() - start
    message = str(err.value)
    assert elapsed < 2.0, f"{elapsed:.2f} s"
    assert len(message.splitlines()) == 1 and "\n" not in message, message
    assert str(spec) in message, message
    for fragment in case.expect:
        assert fragment in message, message


def test_the_unmodified_spec_next_to_them_loads(tmp_path):
    spec = tmp_path / SPEC
    for rel, content in OK_INCLUDE.items():
        _write(tmp_path / rel, content, tmp_path)
    spec.write_text(yaml.safe_dump(BASE, sort_keys=False))
    table = load_table(spec)
    assert [r.name for r in table.rows] == ["Quoted baseline", "MoCo", "PCL"]
    with_include = put("include", ["shared/ok.yaml"])
    raw = copy.deepcopy(BASE)
    with_include(raw)
    spec.write_text(yaml.safe_dump(raw))
    assert load_table(spec).notes == ["a shared note"]

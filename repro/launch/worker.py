"""What a launched job runs: pretraining or one evaluation, then one store record.

This is the one place where methods, evaluations, data and the store meet. A failed job
raises and writes no record.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import submitit

from repro import store

RUNS_ENV = "REPRO_RUNS"


def runs_root(root: str | Path | None = None) -> Path:
    return Path(root or os.environ.get(RUNS_ENV) or "runs")


def _log(msg: str) -> None:
    print(f"[repro {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _record(job: dict, metrics: dict, extra: dict, started: float) -> dict:
    return {
        "key": job["key"], "kind": job["kind"], "label": job["label"], "seed": job["seed"],
        "synthetic": job["synthetic"], "data_sources": job.get("data_sources", {}),
        "context": job.get("context", {}), "metrics": metrics,
        "duration_s": round(time.time() - started, 3), "provenance": store.provenance(),
        **extra,
    }


def run_pretrain(job: dict, store_dir: str | None, runs_dir: str | None,
                 stop_after_epoch: int | None = None) -> dict | None:
    from repro.train.pretrain import ENCODERS, pretrain

    started = time.time()
    run_dir = runs_root(runs_dir) / job["key"]
    payload = job["payload"]
    _log(f"{job['label']} -> {run_dir}")
    summary = pretrain(payload["recipe"], run_dir, seed=payload["seed"], log=_log,
                       stop_after_epoch=stop_after_epoch)
    if "stopped_at_epoch" in summary:
        return None
    from repro.distributed import rank

    if rank() != 0:
        return None
    metrics = {k: summary[k] for k in ("final_loss", "train_seconds", "images_per_second")}
    rec = _record(job, metrics, {"recipe": payload["recipe"], "history": summary["history"],
                                 "artifacts": {"encoders": str(run_dir / ENCODERS)}}, started)
    store.put(rec, store_dir)
    return rec


def run_eval(job: dict, store_dir: str | None, runs_dir: str | None) -> dict:
    from repro.eval import PROTOCOL_INPUTS, PROTOCOLS
    from repro.eval.types import ModelData
    from repro.features import cached_features
    from repro.train.pretrain import ENCODERS, load_encoder

    started = time.time()
    payload = job["payload"]
    ev = payload["eval"]
    pre_dir = runs_root(runs_dir) / payload["pretrain_key"]
    if not (pre_dir / ENCODERS).exists():
        raise FileNotFoundError(f"{job['label']}: pretrained encoders missing at "
                                f"{pre_dir / ENCODERS}; run the pretraining job first")
    encoder = ev.get("encoder", "query")
    backbone, feat_dim = load_encoder(pre_dir, encoder)
    feat_cfg = dict(ev.get("features", {}))
    image_size = feat_cfg.pop("image_size", payload["recipe"]["views"]["image_size"])
    fn = PROTOCOLS.resolve(ev["protocol"])
    _log(f"{job['label']}: {ev['protocol']} on {ev['train']} / {ev['test']}")
    if PROTOCOL_INPUTS[ev["protocol"]] == "features":
        common = dict(cache_dir=pre_dir / "features", encoder=encoder, image_size=image_size,
                      log=_log, **feat_cfg)
        train = cached_features(backbone, ev["train"], **common)
        test = cached_features(backbone, ev["test"], **common)
        result = fn(train, test, seed=payload["seed"], **ev.get("params", {}))
    else:
        from repro.data import DATASET_INFO, build_dataset
        from repro.data.transforms import eval_transform, probe_transform

        tfs = {"train": probe_transform(image_size, ev["train"]["dataset"]),
               "test": eval_transform(image_size, ev["test"]["dataset"])}
        sets = {part: build_dataset(ev[part]["dataset"], ev[part].get("split", "train"),
                                    tfs[part], subset=ev[part].get("subset"))
                for part in ("train", "test")}
        data = ModelData(train=sets["train"], test=sets["test"], feat_dim=feat_dim,
                         num_classes=DATASET_INFO[ev["train"]["dataset"]].num_classes)
        result = fn(backbone, data, seed=payload["seed"], **ev.get("params", {}))
    result = dict(result)
    extra = {"selection": result.pop("selection", {}), "artifacts": result.pop("artifacts", {}),
             "eval": ev, "pretrain_key": payload["pretrain_key"]}
    rec = _record(job, result, extra, started)
    store.put(rec, store_dir)
    _log(f"{job['label']}: " + ", ".join(f"{k}={v:.4g}" for k, v in result.items()
                                         if isinstance(v, (int, float))))
    return rec


class JobRunner(submitit.helpers.Checkpointable):
    """The callable submitit pickles. On preemption/timeout submitit calls ``checkpoint``,
    which requeues the same call; pretraining then resumes from its last epoch checkpoint."""

    def __call__(self, job: dict, store_dir: str | None, runs_dir: str | None):
        if job["kind"] == "pretrain":
            return run_pretrain(job, store_dir, runs_dir)
        return run_eval(job, store_dir, runs_dir)

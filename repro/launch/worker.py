"""What a launched job runs: pretraining or one evaluation, then one store record.

This is the one place where methods, evaluations, data and the store meet. A failed job
raises and writes no record.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

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


def _fingerprint(job: dict) -> tuple[dict, dict]:
    """(fingerprint now, {data key: digest}) of ``job`` on this machine."""
    from repro import fingerprint as FP
    from repro.freshness import job_data_refs, job_fingerprint

    data = FP.data_fingerprints(job_data_refs(job["kind"], job["payload"]))
    return job_fingerprint(job["kind"], job["payload"], data), data


def run_pretrain(job: dict, store_dir: str | None, runs_dir: str | None,
                 stop_after_epoch: int | None = None) -> dict | None:
    from repro import fingerprint as FP
    from repro.train.pretrain import ENCODERS, pretrain

    started = time.time()
    run_dir = runs_root(runs_dir) / job["key"]
    payload = job["payload"]
    fp, _ = _fingerprint(job)
    tag = {"digest": FP.digest({k: fp[k] for k in ("code", "libs", "data")})}
    _log(f"{job['label']} -> {run_dir}")
    summary = pretrain(payload["recipe"], run_dir, seed=payload["seed"], log=_log,
                       stop_after_epoch=stop_after_epoch, tag=tag)
    if "stopped_at_epoch" in summary:
        return None
    from repro.distributed import rank

    if rank() != 0:
        return None
    metrics = {k: summary[k] for k in ("final_loss", "train_seconds", "images_per_second")}
    rec = _record(job, metrics, {"recipe": payload["recipe"], "history": summary["history"],
                                 "run_id": summary["run_id"], "fingerprint": fp,
                                 "attempts": summary["attempts"],
                                 "artifacts": {"encoders": str(run_dir / ENCODERS)}}, started)
    store.put(rec, store_dir)
    return rec


class StaleInput(RuntimeError):
    """An evaluation's pretrained encoders are not the ones its pretraining record describes."""


def _pretrain_run(job: dict, pre_dir: Path, store_dir) -> str:
    """The run id of the encoders this evaluation will read, checked against the record."""
    from repro.train.pretrain import ENCODERS, read_run_info

    key = job["payload"]["pretrain_key"]
    if not (pre_dir / ENCODERS).exists():
        raise FileNotFoundError(f"{job['label']}: pretrained encoders missing at "
                                f"{pre_dir / ENCODERS}; run the pretraining job first")
    pre = store.get(key, store_dir)
    info = read_run_info(pre_dir) or {}
    if pre is None or not pre.get("run_id") or info.get("run_id") != pre["run_id"]:
        raise StaleInput(
            f"{job['label']}: the encoders in {pre_dir} (run {info.get('run_id')}) are not "
            f"those of the stored pretraining record {key} "
            f"(run {pre and pre.get('run_id')}); `repro launch` recomputes the pretraining")
    return pre["run_id"]


def _load_encoder_or_move_aside(pre_dir: Path, encoder: str, layer: str = "pooled",
                                recipe: dict | None = None):
    """Load a pretrained encoder as (module, feature dim): the trunk, or for the
    ``embedding`` layer the trunk with its projection head (dim None). Unreadable encoders are
    moved aside (so the next launch retrains them instead of failing the same way forever)
    and the error says so."""
    from repro.train.checkpoint import UnreadableCheckpoint, move_aside
    from repro.train.embedding import load_embedder
    from repro.train.pretrain import ENCODERS, load_encoder

    try:
        if layer == "embedding":
            return load_embedder(pre_dir, encoder, recipe), None
        return load_encoder(pre_dir, encoder)
    except UnreadableCheckpoint as err:
        moved = move_aside(pre_dir / ENCODERS, "unreadable")
        raise UnreadableCheckpoint(f"{err}; moved to {moved}: `repro launch` retrains it") \
            from None


def run_eval(job: dict, store_dir: str | None, runs_dir: str | None) -> dict:
    import torch

    from repro import fingerprint as FP
    from repro.eval import PROTOCOL_INPUTS, PROTOCOLS
    from repro.eval.types import ModelData
    from repro.features import cached_features

    started = time.time()
    payload = job["payload"]
    ev = payload["eval"]
    pre_dir = runs_root(runs_dir) / payload["pretrain_key"]
    run_id = _pretrain_run(job, pre_dir, store_dir)
    fp, data = _fingerprint(job)
    fp["pretrain_run"] = run_id
    encoder = ev.get("encoder", "query")
    feat_cfg = dict(ev.get("features", {}))
    image_size = feat_cfg.pop("image_size", payload["recipe"]["views"]["image_size"])
    layer = feat_cfg.get("layer", "pooled")
    if layer == "embedding" and PROTOCOL_INPUTS[ev["protocol"]] != "features":
        raise ValueError(f"{job['label']}: features.layer 'embedding' is for feature "
                         f"protocols; {ev['protocol']!r} trains on the backbone itself")
    backbone, feat_dim = _load_encoder_or_move_aside(pre_dir, encoder, layer,
                                                     payload["recipe"])
    fn = PROTOCOLS.resolve(ev["protocol"])
    params = dict(ev.get("params", {}))
    # the job's GPU when it has one (Slurm's --gpus-per-node), as pretraining does: feature
    # extraction and the protocols that train a model on the backbone run there
    device = "cuda" if torch.cuda.is_available() else "cpu"
    _log(f"{job['label']}: {ev['protocol']} on {ev['train']} / {ev['test']} ({device})")
    if PROTOCOL_INPUTS[ev["protocol"]] == "features":
        common = dict(cache_dir=pre_dir / "features", encoder=encoder, image_size=image_size,
                      log=_log, device=device, **feat_cfg)
        feats = {}
        for part in ("train", "test"):
            ref = ev[part]
            # The cache is keyed by what made the features: the run, the code, the files.
            made_by = {"run": run_id, "data": data[FP.data_key(ref)],
                       "code": FP.features_code(payload["recipe"], ref["dataset"])["code"]}
            feats[part] = cached_features(backbone, ref, made_by=made_by, **common)
        result = fn(feats["train"], feats["test"], seed=payload["seed"], **params)
    else:
        from repro.data import DATASET_INFO, build_dataset, data_root
        from repro.data.transforms import eval_transform, probe_transform

        tfs = {"train": probe_transform(image_size, ev["train"]["dataset"]),
               "test": eval_transform(image_size, ev["test"]["dataset"])}
        sets = {part: build_dataset(ev[part]["dataset"], ev[part].get("split", "train"),
                                    tfs[part], subset=ev[part].get("subset"))
                for part in ("train", "test")}
        data = ModelData(train=sets["train"], test=sets["test"], feat_dim=feat_dim,
                         num_classes=DATASET_INFO[ev["train"]["dataset"]].num_classes,
                         root=str(data_root()))
        params.setdefault("device", device)
        result = fn(backbone, data, seed=payload["seed"], **params)
    result = dict(result)
    extra = {"selection": result.pop("selection", {}), "artifacts": result.pop("artifacts", {}),
             "eval": ev, "pretrain_key": payload["pretrain_key"], "fingerprint": fp}
    rec = _record(job, result, extra, started)
    store.put(rec, store_dir)
    _log(f"{job['label']}: " + ", ".join(f"{k}={v:.4g}" for k, v in result.items()
                                         if isinstance(v, (int, float))))
    return rec

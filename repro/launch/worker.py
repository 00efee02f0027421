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


def _load_encoder_or_move_aside(pre_dir: Path, encoder: str):
    """Load a pretrained encoder; unreadable encoders are moved aside (so the next launch
    retrains them instead of failing the same way forever) and the error says so."""
    from repro.train.checkpoint import UnreadableCheckpoint, move_aside
    from repro.train.pretrain import ENCODERS, load_encoder

    try:
        return load_encoder(pre_dir, encoder)
    except UnreadableCheckpoint as err:
        moved = move_aside(pre_dir / ENCODERS, "unreadable")
        raise UnreadableCheckpoint(f"{err}; moved to {moved}: `repro launch` retrains it") \
            from None


def run_eval(job: dict, store_dir: str | None, runs_dir: str | None) -> dict:
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
    backbone, feat_dim = _load_encoder_or_move_aside(pre_dir, encoder)
    feat_cfg = dict(ev.get("features", {}))
    image_size = feat_cfg.pop("image_size", payload["recipe"]["views"]["image_size"])
    fn = PROTOCOLS.resolve(ev["protocol"])
    _log(f"{job['label']}: {ev['protocol']} on {ev['train']} / {ev['test']}")
    if PROTOCOL_INPUTS[ev["protocol"]] == "features":
        common = dict(cache_dir=pre_dir / "features", encoder=encoder, image_size=image_size,
                      log=_log, **feat_cfg)
        feats = {}
        for part in ("train", "test"):
            ref = ev[part]
            # The cache is keyed by what made the features: the run, the code, the files.
            made_by = {"run": run_id, "data": data[FP.data_key(ref)],
                       "code": FP.features_code(payload["recipe"], ref["dataset"])["code"]}
            feats[part] = cached_features(backbone, ref, made_by=made_by, **common)
        result = fn(feats["train"], feats["test"], seed=payload["seed"], **ev.get("params", {}))
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
        result = fn(backbone, data, seed=payload["seed"], **ev.get("params", {}))
    result = dict(result)
    extra = {"selection": result.pop("selection", {}), "artifacts": result.pop("artifacts", {}),
             "eval": ev, "pretrain_key": payload["pretrain_key"], "fingerprint": fp}
    rec = _record(job, result, extra, started)
    store.put(rec, store_dir)
    _log(f"{job['label']}: " + ", ".join(f"{k}={v:.4g}" for k, v in result.items()
                                         if isinstance(v, (int, float))))
    return rec


def export_distributed_env(log=_log) -> int:
    """In a submitit job with several tasks, export RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT/
    LOCAL_RANK for ``repro.distributed.init_from_env``; returns the number of tasks.

    submitit's ``TorchDistributedEnvironment`` takes the master address from the first host
    of the job, the port from the job id (or ``MASTER_PORT``), and the ranks from Slurm's
    (or the local executor's) task variables. CUDA_VISIBLE_DEVICES is left as Slurm set it;
    ``init_from_env`` picks the GPU by local rank.
    """
    try:
        env = submitit.JobEnvironment()
    except RuntimeError:  # not inside a submitit job (tests calling the runner directly)
        return 1
    if env.num_tasks <= 1:
        return 1
    dist_env = submitit.helpers.TorchDistributedEnvironment().export(
        set_cuda_visible_devices=False, overwrite=True)
    log(f"rank {dist_env.rank}/{dist_env.world_size} (local {dist_env.local_rank}) of job "
        f"{env.job_id}; master {dist_env.master_addr}:{dist_env.master_port}")
    return dist_env.world_size


class JobRunner(submitit.helpers.Checkpointable):
    """The callable submitit pickles.

    On SIGUSR2 (preemption, or ``signal_delay_s`` before the time limit) submitit calls
    ``checkpoint`` on rank 0 and requeues the same call: pretraining then resumes from the
    last checkpoint in ``runs/<key>`` and an evaluation simply runs again. A job ends in a
    record only when it finished, so a requeued job writes at most the same key again.
    """

    def __call__(self, job: dict, store_dir: str | None, runs_dir: str | None):
        if job["kind"] == "pretrain":
            export_distributed_env()
            return run_pretrain(job, store_dir, runs_dir)
        return run_eval(job, store_dir, runs_dir)

    # NOTE: SIGTERM alone (preemption where Slurm is not configured to send the user signal,
    # PreemptParameters=send_user_signal) is ignored by submitit, as is its default: training
    # goes on through the grace time, then Slurm kills the job and, thanks to ``--requeue``,
    # requeues it (or ``repro launch`` resubmits it); either way it resumes from the last
    # epoch checkpoint. Requeueing on SIGTERM would also requeue jobs a user ``scancel``s.
    def checkpoint(self, job: dict, store_dir: str | None, runs_dir: str | None):
        # Pretraining checkpoints every epoch (atomically), so there is nothing to save here.
        where = runs_root(runs_dir) / job["key"] / "checkpoint.pt"
        _log(f"{job['label']}: interrupted; requeueing "
             + (f"to resume from {where}" if job["kind"] == "pretrain" else "to run again"))
        return super().checkpoint(job, store_dir, runs_dir)

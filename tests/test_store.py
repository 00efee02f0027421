"""The store: atomic records, provenance, and concurrent writers losing nothing."""

import json
import multiprocessing as mp

import pytest

from repro import store


def _writer(root, worker, n):
    for i in range(n):
        # Same key from every worker (contention on one file) plus one key per write.
        store.put({"key": "shared" + "0" * 18, "worker": worker, "i": i,
                   "payload": "x" * 20000}, root)
        store.put({"key": f"w{worker}i{i:04d}".ljust(24, "0"), "worker": worker, "i": i}, root)


def test_put_get_roundtrip_and_layout(tmp_path):
    rec = {"key": "ab" + "1" * 22, "metrics": {"top1": 50.0}}
    path = store.put(rec, tmp_path)
    assert path == tmp_path / "ab" / f"{rec['key']}.json"
    assert store.get(rec["key"], tmp_path) == rec
    assert store.has(rec["key"], tmp_path)
    assert store.get("cd" + "0" * 22, tmp_path) is None
    assert not list(tmp_path.rglob("*.tmp"))


def test_concurrent_writers_lose_and_corrupt_nothing(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    records = list(store.all_records(tmp_path))
    assert len(records) == 4 * 40 + 1  # every distinct key present exactly once
    shared = store.get("shared" + "0" * 18, tmp_path)
    assert len(shared["payload"]) == 20000  # a whole record, not an interleaving
    assert not list(tmp_path.rglob("*.tmp"))


def test_corrupt_record_is_reported_with_its_path(tmp_path):
    key = "ef" + "2" * 22
    path = store.record_path(key, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("{half a record")
    with pytest.raises(ValueError, match=str(path)):
        store.get(key, tmp_path)


def test_provenance_has_commit_versions_host_time():
    prov = store.provenance()
    assert set(prov) == {"git", "versions", "host", "time"}
    assert "torch" in prov["versions"] and "repro" in prov["versions"]
    assert set(prov["git"]) == {"commit", "dirty"}
    json.dumps(prov)

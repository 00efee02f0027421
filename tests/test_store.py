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


@pytest.mark.parametrize("content", [b"{half a record", b"\xff\xfe binary", b"[1, 2]",
                                     b'{"key": "someone else", "metrics": {}}',
                                     b'{"key": "KEY", "metrics": [1]}'])
def test_unreadable_record_is_moved_aside_and_counts_as_missing(tmp_path, capsys, content):
    key = "ef" + "2" * 22
    path = store.record_path(key, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(content.replace(b"KEY", key.encode()))
    assert store.get(key, tmp_path) is None
    assert not store.has(key, tmp_path) and not path.exists()
    moved = list((tmp_path / store.CORRUPT_DIR).iterdir())
    assert len(moved) == 1 and moved[0].read_bytes() == content.replace(b"KEY", key.encode())
    err = capsys.readouterr().err
    assert str(path) in err and str(moved[0]) in err and "counts as missing" in err
    assert list(store.all_records(tmp_path)) == []  # quarantined files are never read back
    store.put({"key": key, "metrics": {"x": 1}}, tmp_path)  # the job can be stored again
    assert store.get(key, tmp_path)["metrics"] == {"x": 1}


def test_temporary_files_of_dead_writers_are_cleaned(tmp_path):
    import os
    import time

    key = "ab" + "3" * 22
    store.put({"key": key, "metrics": {}}, tmp_path)
    old = store.record_path(key, tmp_path).parent / f".{key}.dead.tmp"
    fresh = store.record_path(key, tmp_path).parent / f".{key}.alive.tmp"
    old.write_text("{half")
    fresh.write_text("{half")
    past = time.time() - store.TMP_MAX_AGE_S - 5
    os.utime(old, (past, past))
    assert store.clean_temporary(tmp_path) == 1
    assert not old.exists() and fresh.exists()  # a writer may still be at work on this one
    assert store.has(key, tmp_path)


def test_provenance_has_commit_versions_host_time():
    prov = store.provenance()
    assert set(prov) == {"git", "versions", "host", "time"}
    assert "torch" in prov["versions"] and "repro" in prov["versions"]
    assert set(prov["git"]) == {"commit", "dirty"}
    json.dumps(prov)


def test_git_state_is_dirty_for_code_changes_not_for_rendered_results(tmp_path):
    """A launch writes its table under results/: the next launch's records are not "dirty"
    because of it; a changed code file still makes them dirty."""
    import subprocess

    from repro.store import git_state

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "results" / "table.md").write_text("old\n")
    (tmp_path / "pkg" / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    assert git_state(tmp_path / "pkg") == {"commit": git_state(tmp_path)["commit"],
                                           "dirty": False}
    (tmp_path / "results" / "table.md").write_text("new\n")
    assert git_state(tmp_path / "pkg")["dirty"] is False
    (tmp_path / "pkg" / "code.py").write_text("x = 2\n")
    assert git_state(tmp_path / "pkg")["dirty"] is True

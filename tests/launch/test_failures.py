"""The cause of a failed job is the exception line, wherever the failure is reported from."""

import submitit

from repro.launch.failures import cause_from_log, cause_of, read_failures, update_failures


def _fails():
    raise RuntimeError("first line of the message\nsecond line")


def test_cause_of_a_real_failed_local_job_is_its_exception_line(tmp_path):
    ex = submitit.AutoExecutor(folder=str(tmp_path), cluster="local")
    ex.update_parameters(timeout_min=1)
    job = ex.submit(_fails)
    err = job.exception()
    assert isinstance(err, submitit.core.utils.FailedJobError)
    assert str(err).splitlines()[-1].strip().endswith("_log.out")  # what used to be shown
    assert cause_of(err) == "RuntimeError: first line of the message"


def test_cause_of_plain_errors_and_tracebacks():
    assert cause_of(ValueError("bad\nmore")) == "ValueError: bad"
    text = ("Job (task=0) failed during processing with trace:\n----------------------\n"
            "Traceback (most recent call last):\n  File \"w.py\", line 3, in run\n"
            "repro.train.pretrain.NonFiniteLoss: moco: loss is nan at epoch 0 step 0\n"
            "----------------------\nYou can check full logs with ...\n  - /l/1_0_log.err\n")
    assert cause_of(RuntimeError(text)) == \
        "repro.train.pretrain.NonFiniteLoss: moco: loss is nan at epoch 0 step 0"


def test_cause_from_log_reads_the_last_exception_line(tmp_path):
    log = tmp_path / "1_0_log.err"
    log.write_text("x" * 100_000 + "\nTraceback\nKeyError: 'a'\nsubmitit ERROR ...\n"
                   "OSError: [Errno 28] No space left on device\nsrun: error: task 0\n")
    assert cause_from_log(log) == "OSError: [Errno 28] No space left on device"
    assert cause_from_log(tmp_path / "absent.err") is None
    assert cause_from_log(None) is None


def test_failures_file_adds_forgets_and_survives_corruption(tmp_path):
    update_failures(tmp_path, {"a": {"label": "A", "cause": "E: x", "log": "l"}}, [])
    update_failures(tmp_path, {"b": {"label": "B", "cause": "E: y", "log": None}}, ["a"])
    assert set(read_failures(tmp_path)) == {"b"} and read_failures(tmp_path)["b"]["time"]
    (tmp_path / "failures.json").write_text("{broken")
    assert read_failures(tmp_path) == {}

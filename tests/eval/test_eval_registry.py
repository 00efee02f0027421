import inspect
import subprocess
import sys

import pytest

from repro.eval import PROTOCOL_INPUTS, PROTOCOLS


def test_inputs_cover_registry_exactly():
    assert list(PROTOCOL_INPUTS) == sorted(PROTOCOL_INPUTS) == PROTOCOLS.names()
    assert set(PROTOCOL_INPUTS.values()) <= {"features", "model"}


@pytest.mark.parametrize("name", PROTOCOLS.names())
def test_protocol_importable_with_common_signature(name):
    fn = PROTOCOLS.resolve(name)
    params = inspect.signature(fn).parameters
    first = list(params)[:2]
    expected = ["train", "test"] if PROTOCOL_INPUTS[name] == "features" else ["backbone", "data"]
    assert first == expected
    assert params["seed"].kind is inspect.Parameter.KEYWORD_ONLY
    if PROTOCOL_INPUTS[name] == "model":
        assert params["device"].default == "cpu"


def test_package_import_is_torch_free():
    code = "import sys, repro.eval; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)

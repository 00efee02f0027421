"""Rewriting a spec's YAML must not change what it means: every shipped spec resolves to exactly
the recipes, evaluations and job keys recorded in ``tests/fixtures/resolved_specs.json``.

The fixture holds, per spec (``<paper>/<table>``): every resolved recipe at every scale it
defines and every resolved evaluation at every scale it defines (as content hashes into a pool
of bodies, so the file stays small), the scales, and the key and label of every job at every scale
with every dataset real and with every dataset synthetic. Recipe and evaluation bodies are
compared through their canonical JSON (sorted keys; 1 and 1.0 differ), exactly.

When a change is *meant* to change a resolved spec (a new table, a new recipe, a changed value),
rewrite the fixture and review its diff:

    .venv/bin/python tests/test_resolved_specs.py --diff   # which spec / id / scale differ
    .venv/bin/python tests/test_resolved_specs.py --write
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from repro import jobs  # noqa: E402
from repro.spec import find_specs, load_table  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "resolved_specs.json"


def _canonical(body) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def resolve_all() -> dict:
    pool: dict[str, object] = {}

    def ref(body) -> str:
        key = jobs.content_key(body)
        assert _canonical(pool.setdefault(key, body)) == _canonical(body), f"collision {key}"
        return key

    specs = {}
    for path in find_specs(ROOT / "experiments"):
        table = load_table(path)
        name = f"{path.parent.name}/{path.stem}"
        specs[name] = {
            "scales": table.scales,
            "recipes": {rid: {scale: ref(body) for scale, body in by_scale.items()}
                        for rid, by_scale in table.recipes.items()},
            "evals": {eid: {scale: ref(table.eval_at(eid, scale)) for scale in ev["scales"]}
                      for eid, ev in table.evals.items()},
            "jobs": {scale: {source: [f"{j.key} {j.label}" for j in jobs.expand(
                table, scale, {d: source for d in jobs.datasets_used(table, scale)})]
                for source in ("real", "synthetic")} for scale in table.scales},
        }
    return {"specs": specs, "bodies": dict(sorted(pool.items()))}


def test_every_spec_resolves_as_recorded():
    expected = json.loads(FIXTURE.read_text())
    # through JSON, as the fixture was written: tuples become lists, 1 and 1.0 stay apart
    actual = json.loads(json.dumps(resolve_all()))
    assert sorted(actual["specs"]) == sorted(expected["specs"])
    for name, spec in expected["specs"].items():
        got = actual["specs"][name]
        for part in ("recipes", "evals"):
            assert sorted(got[part]) == sorted(spec[part]), f"{name}: {part} ids differ"
            for key, by_scale in spec[part].items():
                assert sorted(got[part][key]) == sorted(by_scale), \
                    f"{name}: {part}.{key}: scales differ"
                for scale, digest in by_scale.items():
                    have = got[part][key][scale]
                    assert have == digest, (
                        f"{name}: {part}.{key}.{scale} differs:\n"
                        f"expected {_canonical(expected['bodies'][digest])}\n"
                        f"got      {_canonical(actual['bodies'][have])}")
        for part in ("scales", "jobs"):
            assert got[part] == spec[part], f"{name}: {part} differ"
    assert _canonical(actual) == _canonical(expected)


def differences() -> list[str]:
    """One line per resolved recipe or evaluation (spec, id, scale) and per scale's job list
    that differs from the fixture: what ``--diff`` prints."""
    expected = json.loads(FIXTURE.read_text())
    actual = json.loads(json.dumps(resolve_all()))
    out = []
    for name in sorted(set(expected["specs"]) | set(actual["specs"])):
        old, new = expected["specs"].get(name, {}), actual["specs"].get(name, {})
        for part in ("recipes", "evals"):
            for key in sorted(set(old.get(part, {})) | set(new.get(part, {}))):
                a, b = old.get(part, {}).get(key, {}), new.get(part, {}).get(key, {})
                for scale in sorted(set(a) | set(b)):
                    if a.get(scale) != b.get(scale):
                        out.append(f"{name} {part}.{key} scale {scale}")
        for scale in sorted(set(old.get("jobs", {})) | set(new.get("jobs", {}))):
            if old.get("jobs", {}).get(scale) != new.get("jobs", {}).get(scale):
                out.append(f"{name} jobs scale {scale}")
        if old.get("scales") != new.get("scales"):
            out.append(f"{name} scales")
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["--diff"]:  # what differs from the fixture, e.g. "only scale paper"
        print("\n".join(differences()) or "no differences")
        sys.exit(0)
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    FIXTURE.write_text(json.dumps(resolve_all(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE.relative_to(ROOT)}")

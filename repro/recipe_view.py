"""``repro recipe``: one row's fully resolved recipe at a scale, each value with its source.

Torch-free (in ``repro.fingerprint.HARNESS``): it reads the spec only. The sources are the
``sources:`` written beside each value in the spec files (see ``repro.spec.recipe_sources``);
a value whose body gives none is shown as ``(no source)`` and counted at the end.
"""

from __future__ import annotations

import textwrap

from tabulate import tabulate

from repro.spec import OURS, SpecError, Table, recipe_sources


class RecipeViewError(ValueError):
    """A row or recipe the spec does not have at the scale asked for."""


def find_recipe(table: Table, name: str, scale: str) -> tuple[str, str]:
    """(recipe id, what was matched) for ``name``: a row's name, or a recipe id."""
    rows = [r for r in table.rows if r.name == name]
    if rows:
        rid = table.row_recipe(rows[0], scale)
        if rid is None:
            trained = [r.name for r in table.rows if table.row_recipe(r, scale)]
            raise RecipeViewError(f"{table.path}: row {name!r} trains nothing at scale {scale}; "
                                  f"allowed: {', '.join(trained)}")
        return rid, f"row {name!r}"
    if name in table.recipes:
        if scale not in table.recipes[name]:
            raise RecipeViewError(f"{table.path}: recipe {name!r} has no scale {scale}; "
                                  f"allowed: {', '.join(table.recipes[name])}")
        return name, f"recipe {name!r}"
    rows_at = [r.name for r in table.rows if table.row_recipe(r, scale)]
    raise RecipeViewError(f"{table.path}: no row or recipe named {name!r}; allowed: a row "
                          f"({', '.join(rows_at)}) or a recipe id ({len(table.recipes)} in "
                          "this spec, e.g. " + ", ".join(list(table.recipes)[:3]) + ")")


def _cited(source: str, references: dict) -> list[str]:
    refs = []
    for part in source.split(";"):
        ref = part.partition(":")[0].strip()
        if ref != OURS and ref in references and ref not in refs:
            refs.append(ref)
    return refs


def render(table: Table, name: str, scale: str, width: int = 60) -> tuple[str, int]:
    """The recipe of ``name`` at ``scale`` as text, and how many values have no source."""
    rid, what = find_recipe(table, name, scale)
    values = recipe_sources(table, rid, scale)
    rows, cited, missing = [], [], 0
    for v in values:
        if v.source is None:
            missing += 1
        for ref in _cited(v.source or "", table.references):
            if ref not in cited:
                cited.append(ref)
        file, _, at = v.written.partition(": ")
        rows.append([v.path, repr(v.value) if isinstance(v.value, str) else v.value,
                     textwrap.fill(v.source or "(no source)", width),
                     f"{file.split(' (included from')[0]}: {at}"])
    lines = [f"{table.path}: {what} -> recipe {rid} at scale {scale}", ""]
    lines.append(tabulate(rows, headers=["key", "value", "source", "set in"],
                          tablefmt="simple"))
    method = table.recipes[rid][scale]["method"]
    lines += ["", f"params not listed take the defaults of method {method!r} "
                  f"(repro/methods; `repro list methods`)."]
    if cited:
        lines += ["", "references:"]
        lines += [f"  {ref}: {table.references[ref]}" for ref in cited]
    if missing:
        lines += ["", f"{missing} value(s) without a source"]
    return "\n".join(lines) + "\n", missing


def run(args) -> int:
    try:
        text, missing = render(args.table, args.name, args.scale)
    except RecipeViewError as err:
        raise SpecError(str(err)) from None
    print(text, end="")
    return 1 if (missing and args.strict) else 0

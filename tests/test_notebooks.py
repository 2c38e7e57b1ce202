"""The shipped notebooks run: every code cell, in order, in one namespace, the way a kernel runs
them (a cell's last expression is its displayed value); none is stored with outputs."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _code_cells(path: Path) -> list[dict[str, Any]]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [cell for cell in cells if cell["cell_type"] == "code"]


def _run_cell(source: str, name: str, namespace: dict[str, Any]) -> object:
    """Execute one cell; return the value of its last statement when that is an expression."""
    tree = ast.parse(source, filename=name)
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    if last is not None:
        tree.body.pop()
    exec(compile(tree, name, "exec"), namespace)
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), name, "eval"), namespace)


def test_there_are_notebooks() -> None:
    """The repository ships the walkthrough and the four question notebooks."""
    assert {p.stem for p in NOTEBOOKS} >= {
        "wan2_1_costs",
        "where_does_the_time_go",
        "what_fits_on_my_gpus",
        "which_setup",
        "how_good_is_the_model",
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    """No code cell carries outputs or an execution count: the notebooks are run, not stored run."""
    for cell in _code_cells(path):
        assert cell["outputs"] == []
        assert cell["execution_count"] is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_code_cells_run(path: Path) -> None:
    """Each code cell executes without error; a notebook that uses the figures displays one (a
    figure whose notebook representation is a PNG)."""
    from matplotlib.figure import Figure

    namespace: dict[str, Any] = {}
    shown = [_run_cell("".join(cell["source"]), path.name, namespace) for cell in _code_cells(path)]
    if any("llm_perf_opt.plots" in "".join(cell["source"]) for cell in _code_cells(path)):
        figures = [value for value in shown if isinstance(value, Figure)]
        assert figures
        assert all(figure._repr_png_().startswith(b"\x89PNG") for figure in figures)  # type: ignore[attr-defined]

"""The shipped notebooks run in a real Jupyter kernel (nbclient), top to bottom; none is stored with
outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _code_cells(path: Path) -> list[dict[str, Any]]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [cell for cell in cells if cell["cell_type"] == "code"]


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
def test_notebook_runs_in_a_kernel(path: Path) -> None:
    """Each notebook runs top to bottom in a real Jupyter kernel (nbclient) without error; one that
    uses the figures displays one as a PNG."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    if any("llm_perf_opt.plots" in "".join(cell["source"]) for cell in _code_cells(path)):
        outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
        assert any("image/png" in output.get("data", {}) for output in outputs)

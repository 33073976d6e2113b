"""The notebooks: each `notebooks/NN_name.py` (jupytext percent format) is the source, executed here in quick
mode; the `NN_name.ipynb` beside it, which people open in Jupyter, must be its stripped conversion.

Each notebook is one test (run them in parallel with `pytest -n 2`). The kernel is ipykernel's default
"python3", started with CI=1 and TSALLIS_QUICK=1 so the parameter cell picks the small sizes, with the
working directory set to the repository root (so relative paths like `tests/fixtures/...` resolve) and
the Hugging Face hub offline. A cell that raises fails the test with the cell's traceback.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
TIMEOUT_S = {"06": 300, "07": 300}  # per cell
DEFAULT_TIMEOUT_S = 180


def _quick_env() -> dict[str, str]:
    env = dict(os.environ, CI="1", TSALLIS_QUICK="1", MPLBACKEND="Agg", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), TQDM_DISABLE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return env


def _cells(nb) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def pair_differences(source, paired) -> list[str]:
    """How a committed .ipynb differs from its .py source's conversion, stripped of outputs: cell types,
    sources and tags, the kernel, and any output or execution count left in it (empty when in sync)."""
    problems = []
    ours, theirs = _cells(source), _cells(paired)
    if len(ours) != len(theirs):
        problems.append(f"{len(theirs)} cells in the .ipynb, {len(ours)} in the .py")
    problems += [f"cell {i} differs" for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    if source.metadata.get("kernelspec") != paired.metadata.get("kernelspec"):
        problems.append("kernelspec differs")
    problems += [f"cell {i} has outputs" for i, c in enumerate(paired.cells)
                 if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    return problems


def test_notebooks_exist_and_are_paired():
    assert [p.name[:2] for p in SOURCES] == ["01", "02", "03", "04", "05", "06", "07"], SOURCES
    assert all(p.with_suffix(".ipynb").exists() for p in SOURCES)
    assert not (ROOT / "notebooks" / "_build.py").exists()


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_ipynb_is_the_stripped_conversion_of_its_source(path: Path):
    """Fix a failure with `jupytext --sync notebooks/NN_name.py` (and clear outputs before committing)."""
    paired = nbformat.read(path.with_suffix(".ipynb"), as_version=4)
    nbformat.validate(paired)
    assert pair_differences(jupytext.read(path), paired) == []


def test_pair_check_catches_drift():
    """The comparison above can fail: an edited cell, a dropped cell and a left-over output are each caught."""
    source = jupytext.read(SOURCES[1])
    edited = nbformat.reads(nbformat.writes(source), as_version=4)
    assert pair_differences(source, edited) == []
    edited.cells[1].source += "\nQS = (0.0,)"
    assert pair_differences(source, edited) == ["cell 1 differs"]
    dropped = nbformat.reads(nbformat.writes(source), as_version=4)
    dropped.cells.pop()
    assert pair_differences(source, dropped)[0].startswith(f"{len(source.cells) - 1} cells")
    ran = nbformat.reads(nbformat.writes(source), as_version=4)
    ran.cells[1].execution_count = 1
    assert pair_differences(source, ran) == ["cell 1 has outputs"]


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_layout(path: Path):
    """Opens with narrative; the first code cell holds the parameters (tagged for papermill) with QUICK."""
    nb = jupytext.read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert nb.cells[0].cell_type == "markdown", f"{path.name}: should open with a narrative cell"
    assert "parameters" in code[0].metadata.get("tags", []), f"{path.name}: first code cell not tagged 'parameters'"
    assert "QUICK = quick_mode()" in code[0].source, f"{path.name}: the parameter cell has no QUICK switch"
    assert not any("def table(" in c.source for c in code), f"{path.name}: use tsallis.notebook.table"


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run the notebook from its .py source top to bottom in quick mode; any error fails the test."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    for k, v in _quick_env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("TSALLIS_NOTEBOOK_TMP", str(tmp_path))  # scratch space for runs the notebooks write
    nb = jupytext.read(path)
    client = NotebookClient(nb, timeout=TIMEOUT_S.get(path.name[:2], DEFAULT_TIMEOUT_S), kernel_name="python3",
                            allow_errors=False, resources={"metadata": {"path": str(ROOT)}})
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as err:
        pytest.fail(f"{path.name} failed in quick mode:\n{err}", pytrace=False)
    print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")  # every code cell ran

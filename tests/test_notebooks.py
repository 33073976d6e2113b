"""Execute every notebook in `notebooks/` in quick mode, and check that the committed files are clean.

Each notebook is one test (run them in parallel with `pytest -n 2`). The kernel is ipykernel's default
"python3", started with CI=1 and TSALLIS_QUICK=1 so the parameter cell picks the small sizes, with the
working directory set to the repository root (so relative paths like `tests/fixtures/...` resolve) and
the Hugging Face hub offline. A cell that raises fails the test with the cell's traceback.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TIMEOUT_S = {"06": 300, "07": 300}  # per notebook; per cell the same limit applies
DEFAULT_TIMEOUT_S = 180


def _quick_env() -> dict[str, str]:
    env = dict(os.environ, CI="1", TSALLIS_QUICK="1", MPLBACKEND="Agg", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1",
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"), TQDM_DISABLE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return env


def test_notebooks_exist():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"], NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_clean(path: Path):
    """Committed with outputs stripped; the first code cell holds the parameters (tagged) with QUICK."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{path.name}: no code cells"
    for i, c in enumerate(code):
        assert c.outputs == [] and c.execution_count is None, f"{path.name}: code cell {i} has outputs"
    assert "parameters" in code[0].metadata.get("tags", []), f"{path.name}: first code cell not tagged 'parameters'"
    assert "QUICK = " in code[0].source, f"{path.name}: the parameter cell has no QUICK switch"
    assert nb.cells[0].cell_type == "markdown", f"{path.name}: should open with a narrative cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run the notebook top to bottom in quick mode; any error fails the test."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    for k, v in _quick_env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("TSALLIS_NOTEBOOK_TMP", str(tmp_path))  # scratch space for runs the notebooks write
    timeout = TIMEOUT_S.get(path.name[:2], DEFAULT_TIMEOUT_S)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(ROOT)}})
    start = time.perf_counter()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as err:
        pytest.fail(f"{path.name} failed in quick mode:\n{err}", pytrace=False)
    elapsed = time.perf_counter() - start
    print(f"{path.name}: {elapsed:.1f} s")
    assert elapsed < timeout

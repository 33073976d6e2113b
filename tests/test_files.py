"""Output files: paths are tried before work starts, writes are atomic (a failure keeps the old file)."""

import json
import os
import stat

import numpy as np
import pytest

from tsallis.errors import InputError
from tsallis.files import atomic_write, atomic_write_text, check_distinct_outputs, check_output_dir, check_output_path


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="disk"):
        with atomic_write(path) as fh:
            fh.write("half of the new")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["r.json"], "the temporary file is cleaned up"


def test_atomic_write_replaces_and_keeps_usual_permissions(tmp_path):
    path = tmp_path / "r.txt"
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(path.stat().st_mode) & 0o044, "readable by others as a plain write would be (umask 022)"
    os.chmod(path, 0o640)
    atomic_write_text(path, "newer")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640, "an existing file keeps its mode"


def test_output_path_checks(tmp_path):
    assert check_output_path(tmp_path / "a.png", "--plot", suffixes={"png"}) == tmp_path / "a.png"
    with pytest.raises(InputError, match="--plot .* must end in one of .png"):
        check_output_path(tmp_path / "a.jpg", "--plot", suffixes={"png"})
    with pytest.raises(InputError, match="is a folder"):
        check_output_path(tmp_path, "--json")
    (tmp_path / "f").write_text("")
    with pytest.raises(InputError, match="is not a folder"):
        check_output_path(tmp_path / "f" / "x.json", "--json")
    with pytest.raises(InputError, match="--json and --csv both name"):
        check_distinct_outputs({"--json": tmp_path / "a", "--csv": str(tmp_path / "." / "a"), "--plot": None})
    assert check_output_dir(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists(), "checking creates nothing"
    with pytest.raises(InputError, match="is a file, so the folder cannot be created"):
        check_output_dir(tmp_path / "f" / "sub", "--out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_folder_is_found_before_work(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(InputError, match="cannot write in"):
            check_output_path(ro / "x.json", "--json")
    finally:
        ro.chmod(0o700)


def test_write_outputs_is_atomic_and_json_has_no_nan(tmp_path, monkeypatch):
    from tsallis.simulate.experiments import run_escape
    from tsallis.simulate.results import write_outputs

    r = run_escape("sigmoid", (0.5,), (1e-2, 1e-3))
    records = r.records() + [{"model": "x", "q": float("nan")}]
    write_outputs(r, records, json_path=tmp_path / "e.json")
    assert json.loads((tmp_path / "e.json").read_text())[-1]["q"] is None  # strict JSON: null, not NaN
    (tmp_path / "e.csv").write_text("old")

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("csv.DictWriter.writerows", broken)
    with pytest.raises(OSError):
        write_outputs(r, r.records(), csv_path=tmp_path / "e.csv")
    assert (tmp_path / "e.csv").read_text() == "old"
    r.save(tmp_path / "res")
    with np.load(tmp_path / "res.npz") as data:
        np.testing.assert_array_equal(data["t_escape"], r.t_escape)

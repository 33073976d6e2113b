"""Stochastic training, result save/load, CLI records, and the no-torch rule."""

import json
import subprocess
import sys

import numpy as np

from tsallis.cli import main
from tsallis.simulate.experiments import EscapeResult, run_escape
from tsallis.simulate.training import TrainResult, run_train


def test_simulate_never_imports_torch():
    code = ("import sys, tsallis.simulate.cli, tsallis.simulate.experiments, tsallis.simulate.training, "
            "tsallis.simulate.plots; tsallis.simulate.experiments.run_escape('sigmoid', (0.5,), (0.1,)); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sgd_q_effect_and_grpo_zero_advantage():
    r = run_train("latent:8,4", ("grpo", "garl"), qs=(0.0, 1.0), p0s=(1e-2, 1e-3), optimizers=("sgd",), lrs=(1.0,),
                  seeds=6, M=16, max_steps=1500, seed=0)
    s = {lab: r.steps[k, 0] for k, lab in enumerate(r.labels)}
    assert np.median(s["garl q=1"][1]) * 5 < np.median(s["garl q=0"][1])  # measured 14 vs 780 steps
    z = r.zero_adv_frac[r.labels.index("grpo"), 0]
    assert 0 < z[0] < z[1] <= 1  # more zero-advantage groups at colder start
    assert np.isnan(r.zero_adv_frac[r.labels.index("garl q=0"), 0]).all()


def test_results_roundtrip(tmp_path):
    r = run_escape("sigmoid", (0.5, 1.0), (1e-2, 1e-3, 1e-4))
    r.save(tmp_path / "esc")
    back = EscapeResult.load(tmp_path / "esc")
    np.testing.assert_array_equal(back.t_escape, r.t_escape)
    assert back.model == "sigmoid" and back.delta == 0.5
    t = run_train("latent:4,3", ("garl",), qs=(1.0,), p0s=(0.1,), optimizers=("adam",), seeds=2, max_steps=50,
                  lrs=(0.1,))
    t.save(tmp_path / "tr")
    assert TrainResult.load(tmp_path / "tr").labels == t.labels


def test_cli_records(tmp_path):
    out = tmp_path / "e.json"
    assert main(["simulate", "escape", "--q", "0.5", "--p0", "0.01", "0.001", "--no-progress", "--json", str(out),
                 "--plot", str(tmp_path / "e.png"), "--csv", str(tmp_path / "e.csv")]) == 0
    rec = json.loads(out.read_text())
    assert set(rec[0]) >= {"model", "q", "p0", "delta", "t_escape", "t_exact", "t_asymptotic"} and len(rec) == 2
    assert (tmp_path / "e.png").stat().st_size > 0 and (tmp_path / "e.data.npz").exists()
    assert main(["simulate", "noise", "--q", "0.5", "1", "--no-progress", "--json", str(out)]) == 0
    assert set(json.loads(out.read_text())[0]) >= {"model", "q", "eps", "contamination", "theory"}
    assert main(["simulate", "estimators", "--q", "0.5", "--M", "8", "--P", "0.3", "--replicates", "2000",
                 "--estimators", "garl", "--no-progress", "--json", str(out)]) == 0
    assert set(json.loads(out.read_text())[0]) >= {"estimator", "q", "M", "P", "bias_norm", "bias_stderr",
                                                   "variance", "predicted_bias_norm"}
    assert main(["simulate", "train", "--q", "1", "--p0", "0.1", "--seeds", "2", "--methods", "garl",
                 "--max-steps", "30", "--no-progress", "--plot", str(tmp_path / "t.png")]) == 0
    assert main(["simulate", "schedule", "--t-end", "500", "--no-progress", "--json", str(out)]) == 0

"""Every bad input to the `tsallis` command: exit status 2, a message naming the input, no traceback, nothing
written and no study started.

One table, `CASES`: for each command a list of `Case(argv, fragment, files)`. `{tmp}` in argv is the test's
temporary folder; `files` (path -> content) are created there first (a file in the way of a folder, an old
run's marker). Each case runs in-process through `tsallis.cli.main(argv)` with every study replaced by a
function that fails the test, so a case passes only if the input is refused before any work starts.
To cover another command (e.g. `tsallis llm train`), add `CASES["llm train"] = [...]` and, if it runs
work of its own, its entry point to `_forbid_work`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from tsallis.cli import main


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    fragment: str  # must appear in the error message: it names the input
    files: dict[str, str] = field(default_factory=dict)


def _c(argv: str, fragment: str, files: dict[str, str] | None = None) -> Case:
    """A case from a space-separated argv; the token EMPTY stands for an empty argument."""
    return Case(tuple("" if a == "EMPTY" else a for a in argv.split()), fragment, files or {})


OLD_FULL_RUN = json.dumps({"name": "theory", "title": "Theory", "seconds": 1.0, "summary": "", "figures": [],
                           "data": [], "evidence": [], "quick": False})

CASES: dict[str, list[Case]] = {
    "tsallis": [
        _c("", "required: COMMAND"),
        _c("nosuch", "invalid choice: 'nosuch'"),
        _c("--nosuch theory", "unrecognized arguments: --nosuch"),
        _c("simulate", "required: STUDY"),
        _c("simulate nosuch", "invalid choice: 'nosuch'"),
    ],
    "theory": [
        _c("theory --only no-such-check", "no-such-check"),
        _c("theory --only 9.9", "--only: unknown check id(s) 9.9"),
        _c("theory --only eq1 eq1", "--only lists eq1 twice"),
        _c("theory --only", "--only: expected at least one argument"),
        _c("theory --json {tmp}", "--json '{tmp}' is a folder"),
        _c("theory --json {tmp}/missing/x.json", "'{tmp}/missing' does not exist"),
        _c("theory --json {tmp}/afile/x.json", "is not a folder", {"afile": "x"}),
        _c("theory --json EMPTY", "--json must be a file path"),
        _c("theory --bogus", "unrecognized arguments: --bogus"),
    ],
    "reproduce": [
        _c("reproduce --only nosuch", "--only: unknown stage(s) nosuch"),
        _c("reproduce --only theory theory", "--only lists theory twice"),
        _c("reproduce --only", "--only: expected at least one argument"),
        _c("reproduce --out {tmp}/afile", "--out '{tmp}/afile' is a file", {"afile": "x"}),
        _c("reproduce --out {tmp}/afile/sub", "is a file, so the folder cannot be created", {"afile": "x"}),
        _c("reproduce --out EMPTY", "--out must be a folder path"),
        _c("reproduce --quick --only theory --out {tmp}/out", "would overwrite it: pass --force",
           {"out/theory/result.json": OLD_FULL_RUN}),
        _c("reproduce --only theory --out {tmp}/out", "result.json is unreadable",
           {"out/theory/result.json": "{half a file"}),
        _c("reproduce --bogus", "unrecognized arguments: --bogus"),
    ],
    "simulate escape": [
        _c("simulate escape --model sigmoid --q 2 --p0 1e-3", "--q must lie in [0, 1]"),
        _c("simulate escape --q -0.1", "--q must lie in [0, 1]"),
        _c("simulate escape --q nan", "--q must lie in [0, 1]"),
        _c("simulate escape --q abc", "argument --q: invalid float value: 'abc'"),
        _c("simulate escape --q 0.5 0.5", "--q lists 0.5 twice"),
        _c("simulate escape --p0 0", "--p0 must lie in (0, 1)"),
        _c("simulate escape --p0 -0.001", "--p0 must lie in (0, 1)"),
        _c("simulate escape --p0 -1e-3", "argument --p0: expected at least one argument"),  # argparse: an option
        _c("simulate escape --p0 1", "--p0 must lie in (0, 1)"),
        _c("simulate escape --p0 inf", "--p0 must lie in (0, 1)"),
        _c("simulate escape --p0 nan", "--p0 must lie in (0, 1)"),
        _c("simulate escape --p0 0.5", "--p0 = 0.5 is not below --delta = 0.5"),
        _c("simulate escape --p0 0.7", "--p0 = 0.7 is not below --delta"),
        _c("simulate escape --p0 0.3 --delta 0.2", "--p0 = 0.3 is not below --delta = 0.2"),
        _c("simulate escape --delta 0", "--delta must lie in (0, 1)"),
        _c("simulate escape --delta 1", "--delta must lie in (0, 1)"),
        _c("simulate escape --delta nan", "--delta must lie in (0, 1)"),
        _c("simulate escape --model softmax:1", "softmax:N needs N >= 2"),
        _c("simulate escape --model softmax:0", "softmax:N needs N >= 2"),
        _c("simulate escape --model softmax:abc", "--model 'softmax:abc' is malformed: write softmax:N"),
        _c("simulate escape --model softmax:", "--model 'softmax:' is malformed"),
        _c("simulate escape --model softmax:2.5", "--model 'softmax:2.5' is malformed"),
        _c("simulate escape --model latent:0,0", "latent:Z,Y needs Z >= 2 rationales and Y >= 2 answers"),
        _c("simulate escape --model latent:1,4", "latent:Z,Y needs Z >= 2"),
        _c("simulate escape --model latent:5", "--model 'latent:5' is malformed: write latent:Z,Y"),
        _c("simulate escape --model latent:8,4,2", "--model 'latent:8,4,2' is malformed"),
        _c("simulate escape --model dataset:0", "dataset:n needs n >= 1"),
        _c("simulate escape --model sigmoid:3", "--model 'sigmoid:3' is malformed: write sigmoid"),
        _c("simulate escape --model Sigmoid", "unknown model 'Sigmoid'"),
        _c("simulate escape --model EMPTY", "unknown model ''"),
        _c("simulate escape --model latent:100000,100000", "is too large"),
        _c("simulate escape --model latent:8,4 --p0 0.6 --delta 0.9", "latent:8,4: its one useful rationale"),
        _c("simulate escape --model dataset:4 --p0 0.3 --delta 0.9", "--p0 must lie in (0, 0.25)"),
        _c("simulate escape --eps 0.1", "simulate escape does not take --eps"),
        _c("simulate escape --seeds 3", "simulate escape does not take --seeds"),
        _c("simulate escape --M 8", "simulate escape does not take --M"),
        _c("simulate escape --json {tmp}", "--json '{tmp}' is a folder"),
        _c("simulate escape --json {tmp}/missing/e.json", "its folder '{tmp}/missing' does not exist"),
        _c("simulate escape --csv {tmp}/afile/e.csv", "--csv '{tmp}/afile/e.csv': its folder", {"afile": "x"}),
        _c("simulate escape --plot {tmp}/e.txt", "--plot '{tmp}/e.txt' must end in one of"),
        _c("simulate escape --plot {tmp}/e", "--plot '{tmp}/e' must end in one of"),
        _c("simulate escape --json {tmp}/a.json --csv {tmp}/a.json", "--json and --csv both name"),
        _c("simulate escape --json {tmp}/e.data.json --plot {tmp}/e.png", "--json and --plot's data file both name"),
        _c("simulate escape --bogus", "unrecognized arguments: --bogus"),
    ],
    "simulate dispersion": [
        _c("simulate dispersion --model sigmoid", "the dispersion study runs on dataset, latent models only"),
        _c("simulate dispersion --model softmax:10", "runs on dataset, latent models only"),
        _c("simulate dispersion --model dataset:0", "dataset:n needs n >= 1"),
        _c("simulate dispersion --p0 0", "--p0 must lie in (0, 0.25)"),
        _c("simulate dispersion --p0 0.3", "--p0 must lie in (0, 0.25)"),
        _c("simulate dispersion --p0 1e-3 1e-4", "unrecognized arguments: 1e-4"),
        _c("simulate dispersion --t-max 0", "--t-max must lie in (0.01, inf)"),
        _c("simulate dispersion --t-max 1e-3", "--t-max must lie in (0.01, inf)"),
        _c("simulate dispersion --t-max inf", "--t-max must lie in (0.01, inf)"),
        _c("simulate dispersion --q 1.5", "--q must lie in [0, 1]"),
        _c("simulate dispersion --eps 0.1", "simulate dispersion does not take --eps"),
        _c("simulate dispersion --seeds 2", "simulate dispersion does not take --seeds"),
        _c("simulate dispersion --no-progress", "simulate dispersion does not take --no-progress"),
    ],
    "simulate noise": [
        _c("simulate noise --model sigmoid --q 0.5 --eps -0.1", "--eps must lie in (0, 0.5)"),
        _c("simulate noise --eps 0", "--eps must lie in (0, 0.5)"),
        _c("simulate noise --eps 0.5", "--eps must lie in (0, 0.5)"),
        _c("simulate noise --eps 0.7", "--eps must lie in (0, 0.5)"),
        _c("simulate noise --eps nan", "--eps must lie in (0, 0.5)"),
        _c("simulate noise --model latent:8,4", "the noise study runs on sigmoid, softmax, direct models only"),
        _c("simulate noise --model dataset:4", "the noise study runs on sigmoid, softmax, direct"),
        _c("simulate noise --model softmax:1", "softmax:N needs N >= 2"),
        _c("simulate noise --q 2", "--q must lie in [0, 1]"),
        _c("simulate noise --q", "argument --q: expected at least one argument"),
        _c("simulate noise --t-max 0", "--t-max must lie in (0.01, inf)"),
        _c("simulate noise --t-max -5", "--t-max must lie in (0.01, inf)"),
        _c("simulate noise --p0 0.1", "simulate noise does not take --p0"),
        _c("simulate noise --seeds 2", "simulate noise does not take --seeds"),
        _c("simulate noise --M 4", "simulate noise does not take --M"),
        _c("simulate noise --plot {tmp}/n.txt", "--plot '{tmp}/n.txt' must end in one of"),
    ],
    "simulate schedule": [
        _c("simulate schedule --q 0.5", "simulate schedule does not take --q"),
        _c("simulate schedule --p0 0", "--p0 must lie in (0, 1)"),
        _c("simulate schedule --p0 0.6", "--p0 = 0.6 is not below --delta = 0.5"),
        _c("simulate schedule --p0 1e-3 1e-4", "unrecognized arguments: 1e-4"),
        _c("simulate schedule --eps -0.1", "--eps must lie in [0, 0.5)"),
        _c("simulate schedule --eps 0.5", "--eps must lie in [0, 0.5)"),
        _c("simulate schedule --delta 0", "--delta must lie in (0, 1)"),
        _c("simulate schedule --delta 1", "--delta must lie in (0, 1)"),
        _c("simulate schedule --t-end 0", "--t-end must lie in (0, inf)"),
        _c("simulate schedule --t-end -1", "--t-end must lie in (0, inf)"),
        _c("simulate schedule --t-end inf", "--t-end must lie in (0, inf)"),
        _c("simulate schedule --model softmax:1", "softmax:N needs N >= 2"),
        _c("simulate schedule --model nosuch", "unknown model 'nosuch'"),
        _c("simulate schedule --seeds 3", "simulate schedule does not take --seeds"),
        _c("simulate schedule --M 4", "simulate schedule does not take --M"),
    ],
    "simulate estimators": [
        _c("simulate estimators --q 0.5 --P 0", "--P must lie in (0, 0.5)"),
        _c("simulate estimators --P 0.5", "--P must lie in (0, 0.5) (the 'rare' cold start"),
        _c("simulate estimators --P 0.7 --regime scaled", "--P must lie in (0, 0.666667) (the 'scaled' regime"),
        _c("simulate estimators --P -0.1", "--P must lie in (0, 0.5)"),
        _c("simulate estimators --P 0.3 0.3", "--P lists 0.3 twice"),
        _c("simulate estimators --M 0", "--M must be >= 2"),
        _c("simulate estimators --M 1", "--M must be >= 2 (garl_rloo's leave-one-out baseline"),
        _c("simulate estimators --M 0 --estimators garl", "--M must be >= 1"),
        _c("simulate estimators --M 8 8", "--M lists 8 twice"),
        _c("simulate estimators --M 2.5", "argument --M: invalid int value: '2.5'"),
        _c("simulate estimators --replicates 0", "--replicates must be >= 2"),
        _c("simulate estimators --replicates 1", "--replicates must be >= 2 (a variance needs two draws)"),
        _c("simulate estimators --replicates -5", "--replicates must be >= 2"),
        _c("simulate estimators --estimators grpo", "--estimators must be one of garl, garl_rloo, paft; got 'grpo'"),
        _c("simulate estimators --estimators GARL", "--estimators must be one of garl, garl_rloo, paft"),
        _c("simulate estimators --estimators garl garl", "--estimators lists 'garl' twice"),
        _c("simulate estimators --regime nosuch", "argument --regime: invalid choice: 'nosuch'"),
        _c("simulate estimators --q 2", "--q must lie in [0, 1]"),
        _c("simulate estimators --model latent:8,4", "simulate estimators does not take --model"),
        _c("simulate estimators --p0 0.1", "simulate estimators does not take --p0"),
        _c("simulate estimators --eps 0.1", "simulate estimators does not take --eps"),
        _c("simulate estimators --seeds 3", "simulate estimators does not take --seeds"),
        _c("simulate estimators --estimators paft --plot {tmp}/e.png", "--estimators paft alone has none"),
    ],
    "simulate bias": [
        _c("simulate bias --P 0", "--P must lie in (0, 0.5)"),
        _c("simulate bias --P 0.6", "--P must lie in (0, 0.5) (the 'rare' cold start"),
        _c("simulate bias --P 0.03 0.03", "--P lists 0.03 twice"),
        _c("simulate bias --q 1.5", "--q must lie in [0, 1]"),
        _c("simulate bias --MP 0", "--MP must lie in (0, inf)"),
        _c("simulate bias --MP 0.01", "--MP=0.01 gives M = round(MP / P) < 2"),
        _c("simulate bias --replicates 1", "--replicates must be >= 2"),
        _c("simulate bias --cold-start --M 0", "--M must be >= 1"),
        _c("simulate bias --cold-start --replicates 0", "--replicates must be >= 2"),
        _c("simulate bias --model latent:8,4", "simulate bias does not take --model"),
        _c("simulate bias --seeds 2", "simulate bias does not take --seeds"),
        _c("simulate bias --eps 0.1", "simulate bias does not take --eps"),
    ],
    "simulate train": [
        _c("simulate train --optimizers SGD", "--optimizers must be one of sgd, adam; got 'SGD'"),
        _c("simulate train --optimizers rmsprop", "--optimizers must be one of sgd, adam; got 'rmsprop'"),
        _c("simulate train --optimizers sgd sgd", "--optimizers lists 'sgd' twice"),
        _c("simulate train --lr 1.0", "--lr gives 1 learning rate(s) for 2 optimizer(s)"),
        _c("simulate train --optimizers sgd --lr 1.0 0.1", "--lr gives 2 learning rate(s) for 1 optimizer(s)"),
        _c("simulate train --optimizers sgd --lr 0", "--lr must lie in (0, inf)"),
        _c("simulate train --optimizers sgd --lr -1", "--lr must lie in (0, inf)"),
        _c("simulate train --optimizers sgd --lr inf", "--lr must lie in (0, inf)"),
        _c("simulate train --methods ppo", "--methods must be one of grpo, garl, garl_rloo, paft; got 'ppo'"),
        _c("simulate train --methods garl garl", "--methods lists 'garl' twice"),
        _c("simulate train --seeds 0", "--seeds must be >= 2"),
        _c("simulate train --seeds 1", "--seeds must be >= 2 (the mean's confidence interval needs two seeds)"),
        _c("simulate train --M 1", "--M must be >= 2 (GRPO's group std"),
        _c("simulate train --M 0 --methods garl", "--M must be >= 1"),
        _c("simulate train --M 8 16", "unrecognized arguments: 16"),
        _c("simulate train --max-steps 0", "--max-steps must be >= 1"),
        _c("simulate train --max-steps 1.5", "argument --max-steps: invalid int value: '1.5'"),
        _c("simulate train --model sigmoid", "stochastic training runs on latent, dataset models only"),
        _c("simulate train --model softmax:10", "stochastic training runs on latent, dataset models only"),
        _c("simulate train --model latent:1,4", "latent:Z,Y needs Z >= 2"),
        _c("simulate train --p0 0.6 --delta 0.9", "--p0 must lie in (0, 0.5) (latent:8,4"),
        _c("simulate train --p0 0.5 --model dataset:4", "--p0 must lie in (0, 0.25)"),
        _c("simulate train --p0 0.4 --delta 0.3", "--p0 = 0.4 is not below --delta = 0.3"),
        _c("simulate train --p0 0", "--p0 must lie in (0, 0.5)"),
        _c("simulate train --delta 1", "--delta must lie in (0, 1)"),
        _c("simulate train --q -1", "--q must lie in [0, 1]"),
        _c("simulate train --eps 0.1", "simulate train does not take --eps"),
    ],
}

ALL = [pytest.param(cli, case, id=f"{cli}: {' '.join(case.argv) or '(none)'}")
       for cli, cases in CASES.items() for case in cases]


def test_the_table_is_large_and_covers_every_command():
    counts = {cli: len(cases) for cli, cases in CASES.items()}
    assert sum(counts.values()) >= 100, counts
    from tsallis.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    commands = set(sub.choices) - {"llm"}  # llm's bad inputs are appended by its own work
    studies = set(next(a for a in sub.choices["simulate"]._actions if a.dest == "study").choices)
    covered = {cli.split()[0] for cli in CASES} | {cli.split()[1] for cli in CASES if " " in cli}
    assert commands <= covered and studies <= covered, (commands | studies) - covered


def _forbid_work(monkeypatch) -> None:
    """Replace every study, check and stage by a function that fails the test: a refused input must be refused
    before any of them starts."""
    import tsallis.reproduce.stages as stages
    import tsallis.simulate.bias as bias
    import tsallis.simulate.experiments as ex
    import tsallis.simulate.training as tr
    import tsallis.theory.checks as checks
    from tsallis.reproduce.pipeline import Stage

    def started(*args, **kwargs):
        raise AssertionError("work started before the input was refused")

    for mod, name in [(ex, "run_escape"), (ex, "run_noise"), (ex, "run_schedules"), (ex, "run_estimators"),
                      (ex, "run_dispersion"), (tr, "run_train"), (checks, "run_checks"),
                      (bias, "run_bias_expansion"), (bias, "run_bias_cold_start")]:
        monkeypatch.setattr(mod, name, started)
    real = stages.all_stages()
    monkeypatch.setattr(stages, "all_stages", lambda: [Stage(s.name, s.title, started) for s in real])


@pytest.mark.parametrize("cli, case", ALL)
def test_bad_input_exits_2_naming_it(cli, case, tmp_path, monkeypatch, capsys):
    _forbid_work(monkeypatch)
    for rel, content in case.files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    before = sorted(tmp_path.rglob("*"))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert case.fragment.replace("{tmp}", str(tmp_path)) in err, err
    assert err.startswith("error: "), err
    assert "Traceback" not in out + err
    assert sorted(tmp_path.rglob("*")) == before, "a refused command wrote files"


def test_good_input_passes_the_same_gate(tmp_path, monkeypatch):
    """The gate is not a wall: a valid command gets past every check and reaches the study."""
    _forbid_work(monkeypatch)
    with pytest.raises(AssertionError, match="work started"):
        main(["simulate", "escape", "--p0", "1e-2", "1e-3", "--json", str(tmp_path / "e.json"),
              "--plot", str(tmp_path / "e.png")])
    with pytest.raises(AssertionError, match="work started"):
        main(["simulate", "train", "--optimizers", "adam", "--M", "4"])
    with pytest.raises(RuntimeError, match="work started"):  # run_stages names the stage that raised
        main(["reproduce", "--only", "theory", "--out", str(tmp_path / "new" / "out")])


def test_help_and_version_exit_0(capsys):
    from tsallis import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tsallis {__version__}"
    assert main(["simulate", "escape", "--help"]) == 0
    assert "--p0" in capsys.readouterr().out

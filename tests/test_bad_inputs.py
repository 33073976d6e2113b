"""Every bad input to the `tsallis` command: exit status 2, a message naming the input, no traceback, nothing
written and no study started.

One table, `CASES`: for each command a list of `Case(argv, fragment, files)`. `{tmp}` in argv (and in a text
file's content) is the test's temporary folder; `files` (path -> content) are created there first (a file in the
way of a folder, an old run's marker). Each case runs in-process through `tsallis.cli.main(argv)` with every study replaced by a
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
    files: dict[str, str | bytes] = field(default_factory=dict)


def _c(argv: str, fragment: str, files: dict[str, str | bytes] | None = None) -> Case:
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
        _c("theory --json {tmp}/a.json --json={tmp}/b.json", "--json is given twice; give each flag once"),
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
        _c("simulate escape --q 0.5 --q 0.75", "--q is given twice"),
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

# ------------------------------------------------------------------------------------------------ tsallis llm
# Every llm case is refused before a model loads (`_forbid_work` replaces model loading, the toy model's
# pretraining and every study). Training cases write into {tmp}/run, so "nothing written" is checked there.

RUN = "--output-dir {tmp}/run"
GOOD_ROW = json.dumps({"prompt": "2+2=", "answer": "4"})


def _t(argv: str, fragment: str, files: dict[str, str | bytes] | None = None) -> Case:
    """An `llm train` case writing into {tmp}/run."""
    return _c(f"llm train {argv} {RUN}", fragment, files)




def _safetensors(cut: int = 0) -> bytes:
    """A valid safetensors file of one float32 tensor of 4 values (u64 header length, JSON header, data), less
    its last `cut` bytes."""
    header = json.dumps({"__metadata__": {"format": "pt"},
                         "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    data = len(header).to_bytes(8, "little") + header + bytes(16)
    return data[:len(data) - cut]


def _model(files: dict[str, str | bytes], folder: str = "m") -> dict[str, str | bytes]:
    """A minimal model folder {tmp}/<folder> (config.json, model.safetensors), with `files` (name -> content)
    added or replacing those two."""
    return {f"{folder}/{name}": content for name, content in
            {"config.json": '{"model_type": "gpt2"}', "model.safetensors": _safetensors(), **files}.items()}


INDEX = json.dumps({"metadata": {}, "weight_map": {"w": "model-00001-of-00002.safetensors",
                                                   "v": "model-00002-of-00002.safetensors"}})
CORRUPT = "re-download the model, or re-save it with model.save_pretrained"  # the fix every such message gives

CASES["llm"] = [
    _c("llm", "required: LLM_COMMAND"),
    _c("llm trian", "invalid choice: 'trian'"),
]
TRL_NAMES_IN_A_FILE = [  # (config file, message): TRL's GRPOConfig names (tsallis.llm.trl_compat.TRL_FIELDS)
    ("num_generations: 4\nper_device_train_batch_size: 6\n",
     "per_device_train_batch_size=6 counts completions per process and micro-batch"),
    ("save_steps: 5\nsave_every: 10\n", "save_steps (TRL's name) and save_every both set save_every: give one"),
    ("fsdp: hybrid_shard\n", "fsdp='hybrid_shard' is not supported"),
    ("data_seed: 3\n", "data_seed=3 carves the splits of the paper datasets"),
]
CASES["llm train"] = [
    # flags: types
    _t("--learning-rate abc", "--learning-rate must be a number; got 'abc'"),
    _t("--seed 1.5", "--seed must be an integer; got '1.5'"),
    _t("--max-steps 1.5", "--max-steps must be an integer; got '1.5'"),
    _t("--pathwise maybe", "--pathwise must be true or false (also yes/no, any case); got 'maybe'"),
    _t("--pathwise 1", "--pathwise must be true or false"),
    _t("--paft-k two", "--paft-k must be an integer; got 'two'"),
    _t("--reward-weights abc", "--reward-weights[0] must be a number; got 'abc'"),
    # flags: ranges
    _t("--max-steps 0", "--max-steps must lie in [1, inf); got 0"),
    _t("--q 1.5", "--q must lie in [0, 1]; got 1.5"),
    _t("--q nan", "--q must lie in [0, 1]; got nan"),
    _t("--q-end -0.5", "--q-end must lie in [0, 1]; got -0.5"),
    _t("--max-grad-norm -1", "--max-grad-norm must lie in [0, inf); got -1.0"),
    _t("--epsilon -0.1", "--epsilon must lie in [0, 1); got -0.1"),
    _t("--epsilon-high -0.1", "--epsilon-high must lie in [0, inf); got -0.1"),
    _t("--beta -1", "--beta must lie in [0, inf); got -1.0"),
    _t("--success-ema 1", "--success-ema must lie in [0, 1); got 1.0"),
    _t("--success-ema -0.5", "--success-ema must lie in [0, 1)"),
    _t("--save-every -1", "--save-every must lie in [0, inf); got -1"),
    _t("--warmup-steps -2", "--warmup-steps must lie in [0, inf); got -2"),
    _t("--learning-rate inf", "--learning-rate must lie in [0, inf); got inf"),
    _t("--temperature 0", "--temperature must lie in (0, inf); got 0.0"),
    _t("--top-p 1.5", "--top-p must lie in (0, 1]; got 1.5"),
    _t("--adam-beta2 1", "--adam-beta2 must lie in [0, 1); got 1.0"),
    _t("--lora-dropout 1", "--lora-dropout must lie in [0, 1); got 1.0"),
    _t("--toy-width 11", "--toy-width must lie in [2, 10]; got 11"),
    _t("--toy-width 1", "--toy-width must lie in [2, 10]; got 1"),
    _t("--seed -1", "--seed must lie in [0, 4294967295]; got -1"),
    _t("--num-generations 0", "--num-generations must lie in [1, inf); got 0"),
    # flags: choices and names
    _t("--method ppo", "--method must be one of 'grpo', 'garl', 'paft', 'sft'; got 'ppo'"),
    _t("--method GARL", "got 'GARL' (did you mean 'garl'?)"),
    _t("--loss-type dapo2", "(did you mean 'dapo'?)"),
    _t("--dtype fp32", "--dtype must be one of 'auto', 'float32', 'bfloat16', 'float16'"),
    _t("--lerning-rate 1e-3", "unrecognized arguments: --lerning-rate (did you mean --learning-rate?)"),
    _t("--learning_rat 1e-3", "(did you mean --learning_rate?)"),
    _t("--reward-funcs bleu", "unknown reward function 'bleu': choose among exact_answer, exact, em, f1, relaxed, "
                              "numeric, or give an import path"),
    _t("--report-to tensorboard,bogus", "report_to must be one of 'tensorboard', 'wandb', 'trackio', 'mlflow'"),
    # combinations
    _t("--reward-weights 1 2", "reward_weights has 2 weight(s) for 1 reward function(s)"),
    _t("--method grpo --num-generations 1", "method='grpo' needs num_generations >= 2"),
    _t("--method grpo --q 0.3", "method='grpo' does not read q=0.3 (read by garl, paft)"),
    _t("--method garl --beta 0.1", "method='garl' does not read beta=0.1 (read by grpo)"),
    _t("--method garl --loss-type grpo --epsilon 0.3", "epsilon=0.3 (read by grpo); loss_type='grpo' (read by grpo)"),
    _t("--method grpo --paft-k 3 --pathwise false", "paft_k=3 (read by paft); pathwise=False (read by garl)"),
    _t("--prompts-per-step 3 --gradient-accumulation-steps 2", "prompts_per_step=3 must be divisible"),
    _t("--q-schedule step", "q_schedule='step' needs q_switch_at"),
    _t("--task gsm8k", "task must be 'toy', one of finqa, hotpotqa, musique, 'jsonl:PATH' or 'parquet:PATH'"),
    _t("--task jsonl:", "task must be 'toy'"),
    _t("--task finqa", "task='finqa' needs data_dir"),
    _t("--eval-task jsonl:{tmp}/e.jsonl", "eval_task is for a jsonl:/parquet: task"),
    _t("--toy-n-steps 100", "--toy-n-steps must lie in [1, 99]; got 100"),
    _t("--toy-n-steps 0", "--toy-n-steps must lie in [1, 99]; got 0"),
    _t("--fsdp true --lora-r 8", "fsdp=True needs a distributed launch"),
    _t("--delimiter EMPTY", "--delimiter must be a non-empty string"),
    _t("--model {tmp}/nomodel", "model path '{tmp}/nomodel' does not exist"),
    # model files (checked before any model loads)
    _t("--model {tmp}/m", "model file '{tmp}/m/config.json' is corrupt or truncated (not valid JSON",
       _model({"config.json": '{"model_type": "gpt2",'})),
    _t("--model {tmp}/m", "'{tmp}/m/config.json' is corrupt: it holds a JSON list, not an object",
       _model({"config.json": "[1, 2]"})),
    _t("--model {tmp}/m", "model file '{tmp}/m/model.safetensors' is truncated: its tensors need",
       _model({"model.safetensors": _safetensors(cut=5)})),
    _t("--model {tmp}/m", CORRUPT, _model({"model.safetensors": _safetensors(cut=5)})),
    _t("--model {tmp}/m", "'{tmp}/m/model.safetensors' is truncated or not a safetensors file",
       _model({"model.safetensors": b"\x89PNG\r\n\x1a\n garbage, not a header"})),
    _t("--model {tmp}/m", "'{tmp}/m/model.safetensors' is truncated or not a safetensors file (0 bytes",
       _model({"model.safetensors": b""})),
    _t("--model {tmp}/m", "'{tmp}/m/model.safetensors' is corrupt: its header is not a safetensors header",
       _model({"model.safetensors": (12).to_bytes(8, "little") + b"not json!!!!" + bytes(8)})),
    _t("--model {tmp}/m", "'{tmp}/m/model.safetensors' is corrupt: its header is not a safetensors header",
       _model({"model.safetensors": (20).to_bytes(8, "little") + b'{"w": {"dtype": 1}} '})),
    _t("--model {tmp}/m", "model file '{tmp}/m/tokenizer.json' is corrupt or truncated",
       _model({"tokenizer.json": '{"version": "1.0", "trunc'})),
    _t("--model {tmp}/m", "model file '{tmp}/m/tokenizer_config.json' is corrupt or truncated",
       _model({"tokenizer_config.json": b'{"pad_token": "\xff"}'})),
    _t("--model {tmp}/m", "names the weights shard 'model-00002-of-00002.safetensors', which does not exist",
       {**_model({"model.safetensors.index.json": INDEX}), "m/model-00001-of-00002.safetensors": _safetensors()}),
    _t("--model {tmp}/m", "'{tmp}/m/model.safetensors.index.json' is corrupt: it has no weight_map object",
       _model({"model.safetensors.index.json": '{"metadata": {}}'})),
    # config files
    _t("--config {tmp}/c.yaml", "seed (in config file '{tmp}/c.yaml') must be an integer; got 1.5",
       {"c.yaml": "seed: 1.5\n"}),
    _t("--config {tmp}/c.yaml", "q (in config file '{tmp}/c.yaml') must be a number; got '0.5' (a string: write "
       "the number unquoted)", {"c.yaml": 'q: "0.5"\n'}),
    _t("--config {tmp}/c.yaml", "pathwise (in config file '{tmp}/c.yaml') must be true or false",
       {"c.yaml": "pathwise: on\n"}),
    _t("--config {tmp}/c.yaml", "max_steps (in config file '{tmp}/c.yaml') must be an integer; got True",
       {"c.yaml": "max_steps: true\n"}),
    _t("--config {tmp}/c.yaml", "output_dir (in config file '{tmp}/c.yaml') must be a string; got 2024 (int)",
       {"c.yaml": "output_dir: 2024\n"}),
    _t("--config {tmp}/c.yaml", "unknown config key 'lerning_rate' (did you mean 'learning_rate'?) in config file",
       {"c.yaml": "lerning_rate: 1e-3\n"}),
    _t("--config {tmp}/c.yaml", "config file '{tmp}/c.yaml', line 2: invalid YAML (mapping values are not allowed",
       {"c.yaml": "method: garl\nq: 0.5: 1\n"}),
    _t("--config {tmp}/c.yaml", "must hold a mapping of name: value; got list", {"c.yaml": "- 1\n- 2\n"}),
    *(_t("--config {tmp}/c.yaml", fragment, {"c.yaml": text}) for text, fragment in TRL_NAMES_IN_A_FILE),
    _t("--config {tmp}/c.yaml", "config file {tmp}/c.yaml, line 2: invalid UTF-8 (byte 0xff at column 9)",
       {"c.yaml": b"q: 0.5\nmethod: \xff\n"}),
    _t("--config {tmp}/c.json", "config file '{tmp}/c.json', line 1: invalid JSON", {"c.json": '{"q": 0.5,}'}),
    _t("--config {tmp}/c.json", "max_grad_norm (in config file '{tmp}/c.json') must lie in [0, inf); got -1.0",
       {"c.json": '{"max_grad_norm": -1.0}'}),
    _t("--config {tmp}/nofile.yaml", "config file '{tmp}/nofile.yaml' does not exist"),
    _t("--config {tmp}", "config file '{tmp}' is not a file"),
    # data files (read before the model loads)
    _t("--task jsonl:{tmp}/missing.jsonl", "jsonl file '{tmp}/missing.jsonl' does not exist"),
    _t("--task jsonl:{tmp}/d.jsonl", "{tmp}/d.jsonl, line 2: field 'prompt' should be a string or a list of "
       "{role, content} messages; got 5", {"d.jsonl": GOOD_ROW + '\n{"prompt": 5, "answer": "4"}\n'}),
    _t("--task jsonl:{tmp}/d.jsonl", "{tmp}/d.jsonl, line 1: field 'answer' should be a non-blank string; got '  '",
       {"d.jsonl": '{"prompt": "2+2=", "answer": "  "}\n'}),
    _t("--task jsonl:{tmp}/d.jsonl", "{tmp}/d.jsonl, line 1: field 'answer' should be a non-blank string; got 4.0",
       {"d.jsonl": '{"prompt": "2+2=", "answer": 4.0}\n'}),  # an integer becomes its text; a float is ambiguous
    _t("--task jsonl:{tmp}/d.jsonl", "{tmp}/d.jsonl, line 3: invalid JSON",
       {"d.jsonl": GOOD_ROW + "\n\n{oops\n"}),
    _t("--task jsonl:{tmp}/d.jsonl", "{tmp}/d.jsonl, line 2: invalid UTF-8",
       {"d.jsonl": GOOD_ROW.encode() + b'\n{"prompt": "\xc3\x28", "answer": "4"}\n'}),
    _t("--task jsonl:{tmp}/d.jsonl", "{tmp}/d.jsonl, line 1: missing field 'answer'",
       {"d.jsonl": '{"prompt": "2+2="}\n'}),
    _t("--task jsonl:{tmp}/d.jsonl", "line 1: field 'aliases' should be a list of strings; got 'four'",
       {"d.jsonl": '{"prompt": "2+2=", "answer": "4", "aliases": "four"}\n'}),
    _t("--task jsonl:{tmp}/d.jsonl", "line 1: field 'prompt', message 0 should be",
       {"d.jsonl": '{"prompt": [{"role": "bot", "content": "hi"}], "answer": "4"}\n'}),
    _t("--task jsonl:{tmp}/d.jsonl", "line 1: field 'prompt' should be a string or a list",
       {"d.jsonl": '{"prompt": [], "answer": "4"}\n'}),
    _t("--task jsonl:{tmp}/d.jsonl", "line 1: column 'completions' is a reserved reward-function argument",
       {"d.jsonl": '{"prompt": "2+2=", "answer": "4", "completions": 1}\n'}),
    _t("--task jsonl:{tmp}/d.jsonl", "{tmp}/d.jsonl: no rows (the file is empty)", {"d.jsonl": "\n\n"}),
    _t("--task parquet:{tmp}/d.parquet", "{tmp}/d.parquet: not a readable Parquet file", {"d.parquet": "not parquet"}),
    _t("--task jsonl:{tmp}/d.jsonl --eval-task jsonl:{tmp}/e.jsonl", "{tmp}/e.jsonl, line 1: missing field 'prompt'",
       {"d.jsonl": GOOD_ROW, "e.jsonl": '{"answer": "4"}\n'}),
    _t("--lora-config {tmp}/l.json", "unknown peft.LoraConfig argument 'lora_alpa' (did you mean 'lora_alpha'?)",
       {"l.json": '{"lora_alpa": 8}'}),
    _t("--lora-config {tmp}/l.json", "r (in lora_config '{tmp}/l.json') must lie in [1, inf); got 0",
       {"l.json": '{"r": 0}'}),
    _t("--lora-config {tmp}/l.json", "lora_dropout (in lora_config '{tmp}/l.json') must lie in [0, 1); got 2.0",
       {"l.json": '{"lora_dropout": 2.0}'}),
    _t("--lora-config {tmp}/l.yaml", "do not make a peft.LoraConfig: When `layers_pattern` is specified",
       {"l.yaml": "r: 8\nlayers_pattern: h\n"}),
    _t("--lora-config {tmp}/none.json", "lora_config file '{tmp}/none.json' does not exist"),
    # issue 22: duplicates, output folders, missing tokenizer files
    _t("--config {tmp}/c.yaml", "config file '{tmp}/c.yaml' sets 'q' twice (lines 2 and 4); keep one",
       {"c.yaml": "method: garl\nq: 0.5\nseed: 1\nq: 0.9\n"}),
    _t("--config {tmp}/c.yaml", "sets 'q' twice (lines 1 and 1)", {"c.yaml": "{q: 0.5, q: 0.9}\n"}),
    _t("--config {tmp}/c.json", "config file '{tmp}/c.json' sets 'q' twice; keep one", {"c.json": '{"q": 0.5, "q": 0.9}'}),
    _t("--config {tmp}/a.yaml --config {tmp}/b.yaml", "--config is given twice; give each flag once",
       {"a.yaml": "q: 0.5\n", "b.yaml": "seed: 3\n"}),
    _t("--q 0.5 --q 0.9", "--q is given twice; give each flag once"),
    _t("--learning-rate 1e-3 --learning_rate=1e-2", "--learning_rate is given twice (also as --learning-rate)"),
    _t("--reward-funcs em --reward-funcs f1", "--reward-funcs is given twice"),
    _c("llm train --output-dir {tmp}/afile", "--output-dir '{tmp}/afile' is a file, not a folder", {"afile": "x"}),
    _c("llm train --output-dir {tmp}/afile/run", "'{tmp}/afile' is a file, so the folder cannot be created",
       {"afile": "x"}),
    _c("llm train --config {tmp}/c.yaml", "output_dir '{tmp}/afile' is a file, not a folder",
       {"afile": "x", "c.yaml": "output_dir: {tmp}/afile\n"}),
    _t("--model {tmp}/m", "model directory '{tmp}/m' has no tokenizer files (none of tokenizer.json", _model({})),
]
def _checkpoint(folder: str, config: dict, *, drop: str | None = None,
                sums: dict[str, str] | None = None) -> dict[str, str]:
    """The files of a (model-less) checkpoint folder whose manifest checks out; `drop`: a listed file left out;
    `sums`: the manifest records the SHA-256 of these contents instead of the files' own."""
    import hashlib

    files = {"loop_state.json": json.dumps({"format": 2, "config": config, "loop": {}, "num_processes": 1}),
             "rank-0.pt": "x"}
    recorded = {**files, **(sums or {})}
    manifest = json.dumps({"format": 2, "files": {k: len(v) for k, v in files.items()},
                           "sha256": {k: hashlib.sha256(v.encode()).hexdigest() for k, v in recorded.items()}})
    return {f"{folder}/{k}": v for k, v in {**files, "checkpoint.json": manifest}.items() if k != drop}


CASES["llm train"] += [  # run folders and resume (refused before any model loads)
    _t("", "output_dir '{tmp}/run' already holds a run (metrics.jsonl)", {"run/metrics.jsonl": '{"step": 1}\n'}),
    _t("", "already holds a run (checkpoints): continue it with --resume", {"run/checkpoints/latest": "x"}),
    _t("--resume {tmp}/nothing", "--resume '{tmp}/nothing': no such folder"),
    _t("--resume {tmp}/r", "no complete checkpoint found in '{tmp}/r/checkpoints'", {"r/checkpoints/latest": "c"}),
    _t("--resume {tmp}/old", "written by an older tsallis (trainer_state.pt, pickled state)",
       {"old/trainer_state.pt": "pickle"}),
    _t("--resume {tmp}/ck", "cannot resume from '{tmp}/ck': rank-0.pt is missing",
       _checkpoint("ck", {"q": 0.75}, drop="rank-0.pt")),
    _t("--resume {tmp}/ck --q 0.5", "other values of what defines it (q: 0.75 in the run, 0.5 now)",
       _checkpoint("ck", {"q": 0.75})),
    _t("--resume {tmp}/ck --method paft", "(method: 'garl' in the run, 'paft' now)", _checkpoint("ck", {"method": "garl"})),
    _t("--resume {tmp}/ck", "q (in the config saved in '{tmp}/ck') must lie in [0, 1]; got 7.0",
       _checkpoint("ck", {"q": 7.0})),
    _t("--resume {tmp}/ck", "output_dir '{tmp}/run' holds another run (metrics.jsonl) than the checkpoint",
       {**_checkpoint("ck", {}), "run/metrics.jsonl": '{"step": 1}\n'}),
    _t("--resume {tmp}/ck", "checkpoint file '{tmp}/ck/rank-0.pt' is corrupt: its SHA-256 differs",
       _checkpoint("ck", {}, sums={"rank-0.pt": "y"})),
]
CASES["llm eval"] = [
    _c("llm eval {tmp}/nope", "'{tmp}/nope' is not a directory"),
    _c("llm eval toy --out {tmp}/e.json", "--out '{tmp}/e.json' already exists: pass --overwrite to replace it",
       {"e.json": '{"an": "earlier evaluation"}'}),
    _c("llm eval toy --out {tmp}/afile/e.json", "its folder '{tmp}/afile' is not a folder", {"afile": "x"}),
    _c("llm eval toy --out {tmp}", "--out '{tmp}' is a folder"),
    _c("llm eval toy --k 2 --k 3", "--k is given twice"),
    _c("llm eval {tmp}/m", "model directory '{tmp}/m' has no tokenizer files", _model({})),
    _c("llm eval {tmp}/run", "run directory '{tmp}/run' has no best/ and no checkpoints/latest",
       {"run/run_config.json": "{}", "run/metrics.jsonl": ""}),
    _c("llm eval toy --learning-rate 1e-3", "unrecognized arguments: --learning-rate"),
    _c("llm eval toy --split dev", "argument --split: invalid choice: 'dev'"),
    _c("llm eval toy --scorer bleu", "--scorer must be one of 'relaxed', 'em', 'f1', 'numeric', 'exact'"),
    _c("llm eval toy --scorer EM", "(did you mean 'em'?)"),
    _c("llm eval toy --max-examples 0", "argument --max-examples: must lie in [1, inf); got 0"),
    _c("llm eval toy --k 0", "argument --k: must lie in [1, inf); got 0"),
    _c("llm eval toy --k 1.5", "argument --k: must be an integer; got '1.5'"),
    _c("llm eval toy --k -3", "argument --k: must lie in [1, inf); got -3"),
    _c("llm eval toy --k 4 --n 2", "--n 2 < --k 4: p@k needs at least k samples per example"),
    _c("llm eval toy --n 0", "argument --n: must lie in [1, inf); got 0"),
    _c("llm eval {tmp}/m", "model file '{tmp}/m/model.safetensors' is truncated: its tensors need",
       _model({"model.safetensors": _safetensors(cut=1)})),
    _c("llm eval {tmp}/m", "model file '{tmp}/m/config.json' is corrupt or truncated", _model({"config.json": ""})),
    _c("llm eval {tmp}/m", "model file '{tmp}/m/tokenizer.json' is corrupt: it holds a JSON str, not an object",
       _model({"tokenizer.json": '"a string"'})),
    _c("llm eval {tmp}/run/checkpoints/checkpoint-2",
       "model file '{tmp}/run/checkpoints/checkpoint-2/model.safetensors' is truncated",
       {"run/run_config.json": "{}", "run/metrics.jsonl": "",
        **_model({"model.safetensors": _safetensors(cut=9)}, "run/checkpoints/checkpoint-2")}),
    _c("llm eval toy --temperature 0", "--temperature must lie in (0, inf)"),
    _c("llm eval toy --top-p 0", "--top-p must lie in (0, 1]"),
    _c("llm eval toy --eval-batch-size 0", "--eval-batch-size must lie in [1, inf)"),
    _c("llm eval toy --max-rationale-tokens 1.5", "--max-rationale-tokens must be an integer"),
    _c("llm eval toy --seed -1", "--seed must lie in [0, 4294967295]"),
    _c("llm eval toy --task finqa --data-dir {tmp}/nodata", "data_dir '{tmp}/nodata' is not a directory"),
    _c("llm eval toy --config {tmp}/c.yaml", "unknown config key 'temprature'", {"c.yaml": "temprature: 0.7\n"}),
    _c("llm eval toy --task jsonl:{tmp}/d.jsonl", "{tmp}/d.jsonl, line 1: field 'prompt' should be",
       {"d.jsonl": '{"prompt": null, "answer": "4"}\n'}),
    _c("llm eval toy --task jsonl:{tmp}/d.jsonl --eval-task jsonl:{tmp}/e.jsonl --split test",
       "jsonl file '{tmp}/e.jsonl' does not exist", {"d.jsonl": GOOD_ROW}),
]
CASES["llm pretrain-toy"] = [
    _c("llm pretrain-toy --train-steps 0", "argument --train-steps: must lie in [1, inf); got 0"),
    _c("llm pretrain-toy --train-steps 1.5", "argument --train-steps: must be an integer; got '1.5'"),
    _c("llm pretrain-toy --sloppiness 1.5", "argument --sloppiness: must lie in [0, 1]; got 1.5"),
    _c("llm pretrain-toy --seed abc", "argument --seed: must be an integer; got 'abc'"),
    _c("llm pretrain-toy --out {tmp}/m", "--out '{tmp}/m' already exists and is not an empty folder",
       {"m/config.json": "{}"}),
    _c("llm pretrain-toy --out {tmp}/afile/m", "'{tmp}/afile' is a file, so the folder cannot be created",
       {"afile": "x"}),
]
CASES["llm testbed"] = [
    _c("llm testbed --levels 0", "argument --levels: must lie in [1, 99]; got 0"),
    _c("llm testbed --levels 8 1.5", "argument --levels: must be an integer; got '1.5'"),
    _c("llm testbed --n-prompts 1", "argument --n-prompts: must lie in [2, inf); got 1"),
    _c("llm testbed --num-samples 0", "argument --num-samples: must lie in [1, inf); got 0"),
    _c("llm testbed --json {tmp}/t.json", "--json '{tmp}/t.json' already exists: pass --overwrite",
       {"t.json": '{"an": "earlier report"}'}),
    _c("llm testbed --json {tmp}", "--json '{tmp}' is a folder"),
    _c("llm testbed --json {tmp}/no/such/t.json", "--json '{tmp}/no/such/t.json': its folder '{tmp}/no/such' does not exist"),
]
CASES["llm study"] = [
    _c("llm study escape --out {tmp}/s --workers 0", "argument --workers: must lie in [1, 64]; got 0"),
    _c("llm study escape --out {tmp}/s --size huge", "argument --size: invalid choice: 'huge'"),
    _c("llm study nothing --out {tmp}/s", "invalid choice: 'nothing'"),
    _c("llm study settle --out {tmp}/s --arms 1,4", "argument --arms: expected distinct arms from [1, 2, 3]"),
    _c("llm study settle --out {tmp}/s --arms 2,2", "argument --arms: expected distinct arms from [1, 2, 3]"),
    _c("llm study settle --out {tmp}/s --arms x", "argument --arms: expected distinct arms from [1, 2, 3]"),
    _c("llm study escape --out {tmp}/s --arms 2", "--arms applies to 'study settle' only"),
    _c("llm study escape --out {tmp}/used", "exists and is not empty", {"used/old.txt": "a user's result"}),
    _c("llm study escape --out {tmp}/afile", "--out '{tmp}/afile' is a file, not a folder", {"afile": "x"}),
    _c("llm study escape --out {tmp}/afile/s", "'{tmp}/afile' is a file, so the folder cannot be created",
       {"afile": "x"}),
]
CASES["llm measure-p0"] = [
    _c("llm measure-p0 --n-steps 2 100", "argument --n-steps: must lie in [1, 99]; got 100"),
    _c("llm measure-p0 --num-samples 0", "argument --num-samples: must lie in [1, inf); got 0"),
    _c("llm measure-p0 --n-prompts -1", "argument --n-prompts: must lie in [2, inf); got -1"),
    _c("llm measure-p0 --n-prompts 1", "argument --n-prompts: must lie in [2, inf); got 1"),
    _c("llm measure-p0 --style hot", "argument --style: invalid choice: 'hot'"),
    _c("llm measure-p0 --model {tmp}/nomodel", "model path '{tmp}/nomodel' does not exist"),
]
CASES["llm make-tiny-model"] = [
    _c("llm make-tiny-model --layers 0", "argument --layers: must lie in [1, inf); got 0"),
    _c("llm make-tiny-model --hidden 1", "argument --hidden: must lie in [2, inf); got 1"),
    _c("llm make-tiny-model --hidden 33 --out {tmp}/m", "--hidden must be even"),
    _c("llm make-tiny-model --out {tmp}/m", "--out '{tmp}/m' already exists", {"m/x": "x"}),
    _c("llm make-tiny-model --out {tmp}/afile/m", "'{tmp}/afile' is a file, so the folder cannot be created",
       {"afile": "x"}),
]

ALL = [pytest.param(cli, case, id=f"{cli}: {' '.join(case.argv) or '(none)'}")
       for cli, cases in CASES.items() for case in cases]


def test_the_table_is_large_and_covers_every_command():
    counts = {cli: len(cases) for cli, cases in CASES.items()}
    assert sum(counts.values()) >= 100, counts
    from tsallis.cli import build_parser

    assert sum(n for cli, n in counts.items() if cli.startswith("llm")) >= 40, counts
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    commands = set(sub.choices)
    studies = set(next(a for a in sub.choices["simulate"]._actions if a.dest == "study").choices)
    llm = set(next(a for a in sub.choices["llm"]._actions if a.dest == "llm_command").choices)
    covered = {cli.split()[0] for cli in CASES} | {cli.split()[1] for cli in CASES if " " in cli}
    assert commands | studies | llm <= covered, (commands | studies | llm) - covered


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
    _forbid_llm_work(monkeypatch, started)


def _forbid_llm_work(monkeypatch, started) -> None:
    """No model loads, no toy model is pretrained, no tiny model is made and no p0 is measured (llm cases)."""
    try:
        import transformers

        import tsallis.llm.experiments as llm_ex
        import tsallis.llm.study as study
        import tsallis.llm.testbed as testbed
        import tsallis.llm.tiny as tiny
        import tsallis.llm.toy as toy
    except ImportError:  # without the [llm] extra the llm commands are not registered
        return
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", started)
    for mod, name in [(toy, "pretrain_toy_model"), (toy, "pretrained_toy_model"), (tiny, "make_tiny_model"),
                      (llm_ex, "measure_p0"), (testbed, "measure_testbed"), (study, "testbed_study"),
                      (study, "escape_study"), (study, "noise_study")]:
        monkeypatch.setattr(mod, name, started)


@pytest.mark.parametrize("cli, case", ALL)
def test_bad_input_exits_2_naming_it(cli, case, tmp_path, monkeypatch, capsys):
    _forbid_work(monkeypatch)
    for rel, content in case.files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(
            content.replace("{tmp}", str(tmp_path)))
    before = sorted(tmp_path.rglob("*"))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert case.fragment.replace("{tmp}", str(tmp_path)) in err, err
    assert err.startswith("error: "), err
    assert "Traceback" not in out + err
    assert sorted(tmp_path.rglob("*")) == before, "a refused command wrote files"


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder this process really cannot write in: a folder made read-only (chmod 555), or, for root, whom
    permissions do not stop, /sys (a kernel file system that refuses new files). Skipped where neither refuses,
    so that the test never passes on a check it did not exercise."""
    import os
    import tempfile
    from pathlib import Path

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/sys")):
        try:
            fd, probe = tempfile.mkstemp(dir=candidate)
        except OSError:
            yield candidate
            break
        os.close(fd)
        os.unlink(probe)
    else:
        pytest.skip("no folder here refuses this process's writes")
    folder.chmod(0o755)


@pytest.mark.parametrize("argv", ["llm train --output-dir {ro}/run --max-steps 1", "llm make-tiny-model --out {ro}/m",
                                  "llm pretrain-toy --out {ro}/m", "llm eval toy --out {ro}/e.json",
                                  "llm testbed --json {ro}/t.json", "llm study escape --out {ro}/s"])
def test_an_unwritable_output_is_refused_before_any_work(argv, read_only_dir, monkeypatch, capsys):
    """Issue 22 §5: these were tracebacks (PermissionError), and eval's came after the whole evaluation."""
    _forbid_work(monkeypatch)
    assert main([a.replace("{ro}", str(read_only_dir)) for a in argv.split()]) == 2
    err = capsys.readouterr().err
    assert f"cannot write in '{read_only_dir}'" in err and "pick a writable folder" in err, err
    assert "Traceback" not in err


def test_good_input_passes_the_same_gate(tmp_path, monkeypatch):
    """The gate is not a wall: a valid command gets past every check and reaches the study."""
    _forbid_work(monkeypatch)
    with pytest.raises(AssertionError, match="work started"):
        main(["simulate", "escape", "--p0", "1e-2", "1e-3", "--json", str(tmp_path / "e.json"),
              "--plot", str(tmp_path / "e.png")])
    with pytest.raises(AssertionError, match="work started"):
        main(["simulate", "train", "--optimizers", "adam", "--M", "4"])
    rows = tmp_path / "chat.jsonl"
    rows.write_text(json.dumps({"prompt": [{"role": "user", "content": "2+2?"}], "answer": "4", "level": 1}) + "\n")
    config = tmp_path / "c.yaml"
    config.write_text("learning_rate: 1e-3\npathwise: no\nseed: 3\n")
    for argv in (["--max-steps", "2"], ["--config", str(config), "--task", f"jsonl:{rows}", "--q", "0.5"]):
        with pytest.raises(AssertionError, match="work started"):  # the toy model's pretraining
            main(["llm", "train", *argv, "--output-dir", str(tmp_path / "run")])
    for rel, content in _model({"model.safetensors.index.json": INDEX.replace("00002-of-00002", "00001-of-00002"),
                                "model-00001-of-00002.safetensors": _safetensors(),
                                "tokenizer.json": "{}"}).items():  # an intact model folder passes the file check
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(content) if isinstance(content, bytes) else (tmp_path / rel).write_text(content)
    from tsallis.llm.tiny import build_byte_tokenizer

    build_byte_tokenizer().save_pretrained(tmp_path / "m")  # train's door loads the tokenizer (the delimiter check)
    for argv in (["train", "--model", str(tmp_path / "m"), "--output-dir", str(tmp_path / "run2")],
                 ["eval", str(tmp_path / "m"), "--k", "2"]):
        with pytest.raises(AssertionError, match="work started"):  # AutoModelForCausalLM.from_pretrained
            main(["llm", *argv])
    with pytest.raises(RuntimeError, match="work started"):  # run_stages names the stage that raised
        main(["reproduce", "--only", "theory", "--out", str(tmp_path / "new" / "out")])


def test_help_and_version_exit_0(capsys):
    from tsallis import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tsallis {__version__}"
    assert main(["simulate", "escape", "--help"]) == 0
    assert "--p0" in capsys.readouterr().out

"""`tsallis llm ...`: train (GRPO/GARL/PAFT/SFT), eval (p@1/p@k/maj@k of a checkpoint), pretrain-toy,
make-tiny-model, measure-p0, testbed (can the toy model test the paper?).

Every `TrainConfig` field is a flag (`--learning-rate 1e-3`, or TRL's `--learning_rate`), built from the dataclass:
its help is the field's `metadata["help"]` with its default, and its value is held to the field's annotation by
`config.check_value`, the checker config files and Python arguments go through too. Flags override `--config`.
`eval` takes only the fields it uses (`EVAL_FIELDS`). An unknown flag gets a "did you mean", a flag given twice is
refused (`tsallis.cli.Parser`).

Outputs are checked before any work: an output folder that is a file or cannot be written, and an existing
output file (`eval --out`, `testbed --json`, and eval's default file, whose name encodes its settings), are
refused with exit status 2 unless `--overwrite` is given.

No torch at import time: the heavy modules load inside each command. To add a sub-subcommand, write a
`register_<name>(subparsers)` function and append it to SUBCOMMANDS.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from tsallis.errors import InputError
from tsallis.files import atomic_write_text, check_output_dir, check_output_path
from tsallis.llm.config import Range


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the help; a flag's aliases (TRL's underscore spelling) not repeated in the listing."""

    def _format_action_invocation(self, action):
        if action.option_strings and action.nargs != 0:
            metavar = self._format_args(action, self._get_default_metavar_for_optional(action))
            return f"{action.option_strings[0]} {metavar}"
        return super()._format_action_invocation(action)

    def _get_help_string(self, action):
        if action.default is None or "default" in (action.help or ""):  # said already, or nothing to say
            return action.help
        return super()._get_help_string(action)


def _metavar(hint: Any) -> str:
    from tsallis.llm.config import _UNIONS

    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        return _metavar(args[0])
    if origin in _UNIONS:
        inner = next(a for a in args if a is not type(None))
        return _metavar(inner) + ("" if get_origin(inner) is list else "|null")
    if origin is Literal:
        return "{" + ",".join(args) + "}"
    if origin is list:
        return _metavar(args[0])
    return {bool: "BOOL", int: "N", float: "X", str: "TEXT", dict: "JSON"}.get(hint, "V")


def add_config_flags(p: argparse.ArgumentParser, names: list[str] | None = None) -> None:
    """One flag per TrainConfig field in `names` (default all): `--field-name` (and `--field_name`), a raw
    string (list fields: one or more) checked later by `load_config(flags=...)`; help = the field's help and
    default."""
    from tsallis.llm.config import field_default, field_help, field_names, type_hints

    group = p.add_argument_group("config fields (override the --config file; docs/llm.md, \"Config\")")
    for name in names or field_names():
        hint, default = type_hints()[name], field_default(name)
        shown = ",".join(map(str, default)) if isinstance(default, list) else (
            "null" if default is None else str(default).lower() if isinstance(default, bool) else default)
        options = dict.fromkeys([f"--{name.replace('_', '-')}", f"--{name}"])
        ranges = [str(a) for a in _annotations(hint) if str(a) != "(-inf, inf)"]
        group.add_argument(*options, dest=f"cfg__{name}", default=argparse.SUPPRESS, metavar=_metavar(hint),
                           nargs="+" if get_origin(_strip(hint)) is list else None,
                           help=f"{field_help(name)} [default: {shown}{''.join('; in ' + r for r in ranges)}]"
                           .replace("%", "%%"))


def add_trl_flags(p: argparse.ArgumentParser) -> None:
    """TRL's GRPOConfig names that are not TrainConfig fields (`trl_compat.TRL_FIELDS`: `--per_device_train_batch_size`,
    `--save_steps`, ..., and in dash spelling), hidden from the listing but named in one line of it; `load_config`
    reads them as Python and config files do."""
    from tsallis.llm.config import field_names
    from tsallis.llm.trl_compat import TRL_FIELDS

    names = [name for name in TRL_FIELDS if name not in field_names()]
    listed = ", ".join(f"--{n}" for n in names)
    group = p.add_argument_group("TRL's GRPOConfig names", f"also accepted, as in TRL (docs/llm.md, \"Coming from "
                                 f"TRL\"; dashes or underscores): {listed}; the names TRL shares with tsallis "
                                 "(--learning_rate, --num_generations, ...) are the flags above")
    for name in names:
        group.add_argument(*dict.fromkeys([f"--{name}", f"--{name.replace('_', '-')}"]), dest=f"cfg__{name}",
                           default=argparse.SUPPRESS, metavar=_metavar(TRL_FIELDS[name].hint), help=argparse.SUPPRESS)


def _annotations(hint: Any) -> list[Any]:
    """The `Range`s inside a hint."""
    from tsallis.llm.config import Range

    if isinstance(hint, Range):
        return [hint]
    return [r for a in get_args(hint) for r in _annotations(a)]


def _strip(hint: Any) -> Any:
    """`hint` without `| None` and Annotated."""
    from tsallis.llm.config import _UNIONS

    while get_origin(hint) in _UNIONS or get_origin(hint) is Annotated:
        hint = next(a for a in get_args(hint) if a is not type(None))
    return hint


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {k[len("cfg__"):]: v for k, v in vars(args).items() if k.startswith("cfg__")}


def typed(hint: Any):
    """An argparse `type=` that holds a flag's string to `hint` with `config.check_value` (a typed, ranged
    value, or argparse's "argument --flag: ..." error naming the flag)."""
    from tsallis.llm.config import check_value

    def convert(text: str):
        try:
            return check_value("", text, hint, text=True)
        except InputError as err:
            raise argparse.ArgumentTypeError(str(err).strip()) from None

    convert.__name__ = getattr(_strip(hint), "__name__", "value")
    return convert


def _cmd_train(args: argparse.Namespace) -> int:
    from tsallis.llm.config import load_config
    from tsallis.llm.launch import check_fsdp_flag, check_launcher

    check_launcher()  # before anything: a launcher that started 1 process of N trains nothing it was asked to

    saved, flags, moved = None, _flags(args), None
    if args.resume is not None:  # a resumed run starts from its saved config; --config and flags change it
        from tsallis.llm.checkpoint import checkpoint_config, resolve_checkpoint, run_folder

        checkpoint = resolve_checkpoint(args.resume)
        saved = checkpoint_config(checkpoint)
        run, made_in = run_folder(checkpoint), saved.get("output_dir")
        if run is not None and (not isinstance(made_in, str) or Path(made_in).resolve() != run.resolve()):
            saved["output_dir"], moved = str(run), made_in  # a copied or moved run folder continues where it is
    cfg = load_config(args.config, flags=flags, base=saved,
                      base_name=f"the config saved in {args.resume!r}")
    if "fsdp" in flags:
        check_fsdp_flag(cfg.fsdp)  # --fsdp false under accelerate launch --use_fsdp
    if moved is not None and cfg.output_dir == saved["output_dir"]:
        print(f"resuming in {cfg.output_dir!r}, the checkpoint's run folder (the run was made in {moved!r}; "
              "--output-dir would say otherwise)", file=sys.stderr)
    check_output_dir(cfg.output_dir, "--output-dir" if "output_dir" in flags else "output_dir")
    if args.resume is None:  # a folder holding a run, before any model loads (Trainer.train checks it again)
        from tsallis.llm.rundir import check_run_folder

        check_run_folder(cfg.output_dir, resume_path=None, overwrite=cfg.overwrite_output_dir)
    if cfg.model != "toy":  # a missing model folder, or a delimiter its tokenizer cannot use, before the data
        from tsallis.llm.loading import check_delimiter_of, resolve_model_path

        path = resolve_model_path(cfg.model)
        if not cfg.free_form:  # free completions tokenize no delimiter
            check_delimiter_of(path, cfg.resolved_delimiter)
    from tsallis.llm.trainer import Trainer

    trainer = Trainer(cfg, resume_from=args.resume, cache_dir=args.cache_dir)
    result = trainer.train()
    if not trainer.accelerator.is_main_process:  # under torchrun: one summary, the main process's
        return 0
    last = result.history[-1] if result.history else {}
    print(json.dumps({"step": result.step, "checkpoint": result.last_checkpoint, "best": result.best_checkpoint,
                      "final": {k: v for k, v in last.items() if isinstance(v, (int, float))}}, indent=2))
    return 0


def register_train(sub) -> None:
    p = sub.add_parser("train", help="train a local HF causal LM with grpo, garl, paft or sft",
                       formatter_class=HelpFormatter, allow_abbrev=False,
                       description="Train with GRPO, GARL, PAFT or SFT. Every config field is a flag (flags override "
                                   "--config); example: tsallis llm train --method garl --q 0.75 --output-dir "
                                   "runs/garl")
    p.add_argument("--config", help="YAML or JSON file of config fields (flags override it)")
    p.add_argument("--resume", help="checkpoint directory (or run directory) to continue exactly; its saved config "
                                    "is the starting point (--config and flags may change only max_steps, "
                                    "learning_rate and the saving/eval/logging settings); the run continues in the "
                                    "checkpoint's run folder unless --output-dir says otherwise")
    p.add_argument("--cache-dir", help="cache of the toy model (default ~/.cache/tsallis/toy)")
    add_config_flags(p)
    add_trl_flags(p)
    p.set_defaults(func=_cmd_train)


def _check_new_folder(out: str | None, flag: str = "--out") -> None:
    """Refuse an --out folder that exists and is not empty (nothing a user made is overwritten unasked)."""
    if out is None:
        return
    path = Path(out).expanduser()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputError(f"{flag} {out!r} already exists and is not an empty folder: choose a new path (nothing "
                         "is overwritten)")
    check_output_dir(path, flag)  # a file above it, or a folder that cannot be written


def _cmd_pretrain_toy(args: argparse.Namespace) -> int:
    from tsallis.llm.toy import ToyModelSpec, pretrain_toy_model, pretrained_toy_model

    _check_new_folder(args.out)
    spec = ToyModelSpec(train_steps=args.train_steps, sloppiness=args.sloppiness, seed=args.seed)
    path = pretrain_toy_model(spec, args.out) if args.out else pretrained_toy_model(spec, args.cache_dir)
    print(path)
    return 0


def register_pretrain_toy(sub) -> None:
    from tsallis.llm.config import PosInt, Seed, Unit
    from tsallis.llm.toy import ToyModelSpec

    d = ToyModelSpec()
    p = sub.add_parser("pretrain-toy", help="pretrain the tiny CPU testbed model (cached) and print its path",
                       formatter_class=HelpFormatter)
    p.add_argument("--out", help="save here, a new folder (default: the cache, reused when present)")
    p.add_argument("--cache-dir", help="cache root (default ~/.cache/tsallis/toy, or $TSALLIS_CACHE/toy)")
    p.add_argument("--train-steps", type=typed(PosInt), default=d.train_steps, metavar="N", help="pretraining steps")
    p.add_argument("--sloppiness", type=typed(Unit), default=d.sloppiness, metavar="X",
                   help="probability that a pretraining step writes a random digit, in [0, 1]")
    p.add_argument("--seed", type=typed(Seed), default=0, metavar="N", help="seed of the data and the "
                                                                             "initialisation")
    p.set_defaults(func=_cmd_pretrain_toy)


Chain = Annotated[int, Range("[1, 99]")]  # toy chain lengths (tsallis.llm.toy.MAX_CHAIN: n has two digits)
Prompts = Annotated[int, Range("[2, inf)")]  # a standard error over prompts needs two
Workers = Annotated[int, Range("[1, 64]")]


def _cmd_measure_p0(args: argparse.Namespace) -> int:
    from tsallis.llm.experiments import measure_p0

    if args.model != "toy":
        from tsallis.llm.loading import resolve_model_path

        resolve_model_path(args.model)
    res = measure_p0(model=args.model, n_steps=args.n_steps, style=args.style, num_samples=args.num_samples,
                     n_prompts=args.n_prompts, seed=args.seed, cache_dir=args.cache_dir)
    print(json.dumps(res, indent=2))
    return 0


def register_measure_p0(sub) -> None:
    from tsallis.llm.config import PosInt, Seed

    p = sub.add_parser("measure-p0", help="Monte Carlo p0 = mean_x P(y*|x) of a model on the toy task",
                       formatter_class=HelpFormatter)
    p.add_argument("--model", default="toy", help="a local HF model directory, or toy")
    p.add_argument("--n-steps", type=typed(Chain), nargs="+", default=[8, 11, 14, 17], metavar="N",
                   help="toy chain lengths, each in [1, 99]")
    p.add_argument("--style", default="warm", choices=["warm", "cold"], help="toy prompt style")
    p.add_argument("--num-samples", type=typed(PosInt), default=16, metavar="N", help="rationales per prompt")
    p.add_argument("--n-prompts", type=typed(Prompts), default=32, metavar="N", help="prompts per chain length")
    p.add_argument("--seed", type=typed(Seed), default=0, metavar="N", help="sampling seed")
    p.add_argument("--cache-dir", help="cache of the toy model")
    p.set_defaults(func=_cmd_measure_p0)


def _check_new_file(path: str | None, flag: str, overwrite: bool) -> Path | None:
    """`path` (from `flag`) once it can be written and, unless `overwrite`, does not exist yet."""
    if path is None:
        return None
    out = check_output_path(Path(path).expanduser(), flag)
    if out.exists() and not overwrite:
        raise InputError(f"{flag} {path!r} already exists: pass --overwrite to replace it, or choose another file")
    return out


def _cmd_testbed(args: argparse.Namespace) -> int:
    """Per difficulty level (chain length n): p0 with its standard error, median log P, sampled per-step accuracy,
    expected correct samples per step; the uniform-answer floor, the exact irreducible and the final pretraining
    loss, the pretraining CPU time; and the testbed criteria. Exit 0 when the criteria that measure the testbed
    (skill, knob, floor) pass, 1 otherwise; the pretraining cost is reported ([ok] or [note]) but never decides
    the exit status, since it depends on how busy the machine was when the cached model was pretrained."""
    out = _check_new_file(args.json, "--json", args.overwrite)
    from tsallis.llm.testbed import measure_testbed

    report = measure_testbed(args.model, args.levels, n_prompts=args.n_prompts, num_samples=args.num_samples,
                             seed=args.seed, cache_dir=args.cache_dir, verbose=not args.quiet)
    d = report.to_dict()
    print(f"model {report.model}: pretraining loss {report.final_pretrain_loss:.4f} (irreducible "
          f"{report.irreducible_loss:.4f}), {report.pretrain_cpu_seconds:.0f} CPU s; floor {report.floor:.0e}; "
          f"weights sha256 {report.weights_sha256[:16]}")
    print(f"{'n':>3} {'p0':>9} {'+-se':>8} {'median logP':>11} {'step acc':>8} {'copy':>5} {'hits/step':>9}")
    for x in report.levels:
        print(f"{x['difficulty']:>3} {x['p0']:>9.2e} {x['p0_stderr']:>8.1e} {x['median_log_p']:>11.2f} "
              f"{x['per_step_accuracy']:>8.3f} {x['answer_copy_rate']:>5.2f} {x['expected_hits_per_step']:>9.3f}")
    for c in d["criteria"]:
        mark = ("pass" if c["passed"] else "FAIL") if c["gates"] else ("ok" if c["passed"] else "note")
        print(f"[{mark}] {c['criterion']}: {c['value']:.4g}")
    if out is not None:
        atomic_write_text(out, json.dumps(d, indent=2))
    return 0 if all(c["passed"] for c in d["criteria"] if c["gates"]) else 1


def register_testbed(sub) -> None:
    p = sub.add_parser("testbed", help="build/load the toy starting model and measure whether it can test the paper",
                       description=inspect.getdoc(_cmd_testbed))
    p.add_argument("--json", help="write the report (levels, floor, losses, criteria) here (a new file, unless "
                                  "--overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument("--model", default="toy", help="'toy' (the cached default) or a folder from pretrain-toy")
    from tsallis.llm.config import PosInt, Seed

    p.add_argument("--levels", type=typed(Chain), nargs="+", default=[8, 11, 14, 17],
                   help="chain lengths to measure, each in [1, 99]")
    p.add_argument("--n-prompts", type=typed(Prompts), default=64, help="held-out prompts per level")
    p.add_argument("--num-samples", type=typed(PosInt), default=16, help="sampled rationales per prompt")
    p.add_argument("--seed", type=typed(Seed), default=0)
    p.add_argument("--cache-dir", help="cache root of the toy model")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_testbed)


def _settle_arms(text: str) -> tuple[int, ...]:
    """--arms: a comma-separated list of settle arms, e.g. "1,2,3" (`settle.check_arms`)."""
    from tsallis.llm.settle import ARMS, check_arms

    try:
        return check_arms(tuple(int(a) for a in text.split(",")))
    except (ValueError, InputError):
        raise argparse.ArgumentTypeError(f"expected distinct arms from {list(ARMS)}, comma-separated (e.g. 1,2,3); "
                                         f"got {text!r}") from None


def _cmd_study(args: argparse.Namespace) -> int:
    """Runs the testbed measurement, then experiment (1) escape time against p0 (SGD learning-rate sweep, AdamW
    and SGD runs, censored-regression slopes) and/or (2)-(3) label noise with the q=1->0 schedule, writing
    JSON/CSV/PNG and verdicts.json into --out; progress per run in OUT/runs.log. --size full is the whole grid
    (hours on 2 cores); default is the reproduce subset."""
    if args.arms is not None and args.which != "settle":
        raise InputError(f"--arms applies to 'study settle' only (got study {args.which!r}): drop --arms")
    out = check_output_dir(Path(args.out).expanduser(), "--out")
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise InputError(f"--out {str(out)!r} exists and is not empty: pass another folder, or --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    from tsallis.llm.study import escape_study, noise_study, testbed_study, write_verdicts

    log = str(out / "runs.log")
    if args.which == "pass-at-k":  # issue 19: tsallis.llm.pass_at_k (its own sizes)
        from tsallis.llm.pass_at_k import pass_at_k_study

        study = pass_at_k_study(out, size=args.size, cache_dir=args.cache_dir, log=log)
        print(f"verdicts: {write_verdicts(out, [study])}")
        return 0
    if args.which == "settle":  # issue 23: tsallis.llm.settle (arms 1-3, own sizes)
        from tsallis.llm.settle import settle_study

        res = settle_study(out, size=args.size, cache_dir=args.cache_dir, log=log, arms=args.arms or (1, 3))
        print(f"verdicts: {write_verdicts(out, [res])}")
        return 0
    if args.which == "settle-noise":  # issue 23's arm 4
        from tsallis.llm.settle import settle_noise_study

        res = settle_noise_study(out, size=args.size, cache_dir=args.cache_dir, log=log)
        print(f"verdicts: {write_verdicts(out, [res])}")
        return 0
    tb = testbed_study(out, size=args.size, cache_dir=args.cache_dir, verbose=True)
    outputs = []
    if args.which in ("escape", "all"):
        outputs.append(escape_study(out, size=args.size, workers=args.workers, cache_dir=args.cache_dir, log=log,
                                    testbed=tb, redo=args.redo))
    if args.which in ("noise", "all"):
        outputs.append(noise_study(out, size=args.size, workers=args.workers, cache_dir=args.cache_dir, log=log,
                                   redo=args.redo))
    path = write_verdicts(out, outputs)
    for o in outputs:
        for v in o.verdicts:
            print(f"{v.claim}: {v.outcome}\n  criterion: {v.criterion}\n  evidence: {v.evidence}")
    print(f"verdicts: {path}")
    return 0


def register_study(sub) -> None:
    p = sub.add_parser("study", help="the toy-LM cold-start studies: escape time vs p0, label noise, schedule",
                       description=inspect.getdoc(_cmd_study))
    p.add_argument("which", choices=["escape", "noise", "all", "settle", "settle-noise", "pass-at-k"],
                   help="settle / settle-noise: issue 23's settling study (arms 1-3, see --arms) and its label-noise "
                        "arm 4 (sizes quick, default, cpu, full); pass-at-k: held-out unbiased p@k against q after "
                        "exact-gradient SGD (issue 19; sizes quick, default, cpu, full)")
    p.add_argument("--out", required=True, help="output folder (must be new or empty, unless --overwrite)")
    from tsallis.llm.study import SIZES  # light: no torch at import

    p.add_argument("--size", default="full", choices=list(SIZES), help="study size (tsallis.llm.study.SIZES)")
    p.add_argument("--workers", type=typed(Workers), default=2,
                   help="parallel training processes (one torch thread each), in [1, 64]")
    p.add_argument("--cache-dir", help="cache root of the toy model")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out (a killed study's "
                   "finished runs are reused)")
    p.add_argument("--redo", action="store_true", help="with --overwrite: run every run again, finished or not")
    p.add_argument("--arms", type=_settle_arms, default=None,
                   help="settle only: the arms to run, comma-separated from 1 (exact gradient, SGD), 2 (GARL/PAFT, "
                        "SGD, M p0 >= 1 and M = 8), 3 (AdamW); default 1,3")
    p.set_defaults(func=_cmd_study)


# ------------------------------------------------------------------------------------------------------- eval


def resolve_eval_target(path: str | Path) -> tuple[Path | str, Path | None]:
    """(model or checkpoint to load, run directory or None) for `tsallis llm eval PATH`.

    PATH may be a run directory (its best/ checkpoint, else its latest checkpoint), a checkpoint directory
    (run/best or run/checkpoints/checkpoint-N), a Hugging Face model directory, or "toy"."""
    if str(path) == "toy":
        return "toy", None
    from tsallis.llm.checkpoint import is_checkpoint, resolve_checkpoint
    from tsallis.llm.rundir import is_run_folder

    path = Path(path).expanduser()
    if not path.is_dir():
        raise InputError(f"{str(path)!r} is not a directory: give a run directory, a checkpoint directory "
                                "(run/best, run/checkpoints/checkpoint-N) or a Hugging Face model directory")
    if is_run_folder(path):  # a run directory (its root's final model is its last checkpoint's)
        if (path / "best").is_dir():
            return _verified(path / "best"), path
        if (path / "checkpoints" / "latest").exists():
            return resolve_checkpoint(path), path
        raise InputError(f"run directory {str(path)!r} has no best/ and no checkpoints/latest")
    if is_checkpoint(path):  # a checkpoint
        _verified(path)
        for run in (path.parent, path.parent.parent):
            if is_run_folder(run):
                return path, run
        return path, None
    return path, None


def _verified(checkpoint: Path) -> Path:
    """A checkpoint to evaluate, once complete and its files match their SHA-256 (`checkpoint.verify_contents`)."""
    from tsallis.llm.checkpoint import MANIFEST, verify_checkpoint, verify_contents

    if (checkpoint / MANIFEST).exists():  # a folder of model files without one is checked by check_model_files
        reason = verify_checkpoint(checkpoint)
        if reason:
            raise InputError(f"cannot evaluate {str(checkpoint)!r}: {reason}")
        verify_contents(checkpoint)
    return checkpoint


EXTRA_SCORERS = {"finqa": ("numeric",), "hotpotqa": ("em", "f1"), "musique": ("em", "f1")}
"""Scorers reported beside the main one (`eval_scorer`): our FinQA numeric rule, the official EM / token F1."""


FREE_EVAL_FIELDS = ("completion_format", "reward_funcs", "reward_weights")
"""The eval fields only free completions read (a split evaluation's output name does not hash them)."""
EVAL_FIELDS = ("model", "dtype", "chat_template", "delimiter", "task", "eval_task", "data_dir", "prompt_style",
               "prompt_template", "data_seed", "toy_n_steps", "toy_width", "toy_style", "toy_n_eval",
               "max_rationale_tokens", "max_answer_tokens", "temperature", "top_p", "seed", "eval_ties",
               "eval_batch_size", "progress_bar", *FREE_EVAL_FIELDS)
"""The config fields `tsallis llm eval` reads (its --k, --scorer and --split stand for eval_samples, eval_scorer
and eval_split): what selects the examples, formats the prompts and samples; `model` is the base of a LoRA
checkpoint; free completions (completion_format "free") are scored by reward_funcs (weighted by reward_weights)."""


def _load_eval_model(target, cfg, cache_dir):
    import torch

    from tsallis.llm.loading import hf_bars_off, load_model_and_tokenizer, resolve_model_path

    on_cuda = torch.cuda.is_available()
    if target != "toy" and (Path(target) / "adapter_config.json").exists():  # a LoRA checkpoint: base + adapter
        from peft import PeftModel
        from transformers import AutoTokenizer

        model, _ = load_model_and_tokenizer(resolve_model_path(cfg.model, cache_dir), cfg, on_cuda=on_cuda)
        with hf_bars_off():
            model = PeftModel.from_pretrained(model, str(target), local_files_only=True).merge_and_unload()
            tok = AutoTokenizer.from_pretrained(target, local_files_only=True)
        tok.pad_token = tok.pad_token or tok.eos_token
    else:
        model, tok = load_model_and_tokenizer(resolve_model_path(str(target), cache_dir), cfg, on_cuda=on_cuda)
    return model.to("cuda" if on_cuda else "cpu").eval(), tok


def _eval_source(cfg, split: str, run_dir: Path | None) -> tuple[str, str]:
    """(the data, the split) that `tsallis llm eval` scores, as its output names them: the toy's "train" or "eval"
    set; a paper dataset's split; for a jsonl:/parquet: task, the task's file ("train") with --split train, else
    eval_task's file ("eval"), else the task's file again ("train", noted on stderr); for a "dataset" run (rows
    passed from Python), eval_task's file, else the evaluation rows its folder keeps (`run_data.eval_rows_task`)."""
    from tsallis.llm.config import DATASET_TASK, DATASETS

    if cfg.task == "toy":
        return "toy", "train" if split == "train" else "eval"
    if cfg.task in DATASETS:
        return cfg.task, split
    if split != "train" and cfg.eval_task:
        return cfg.eval_task, "eval"
    if cfg.task == DATASET_TASK:
        from tsallis.llm.run_data import eval_rows_task

        return eval_rows_task(run_dir, split), "eval"
    return cfg.task, "train"


def _eval_examples(cfg, data: str, split: str):
    from tsallis.llm.config import DATASETS

    if data == "toy":
        from tsallis.llm.toy import make_examples, toy_task

        return make_examples(toy_task(cfg), split)
    if data in DATASETS:
        from tsallis.llm.data import load_split

        return load_split(cfg.task, Path(cfg.data_dir).expanduser(), split, seed=cfg.data_seed,
                          style=cfg.prompt_style, template=cfg.prompt_template, delimiter=cfg.resolved_delimiter)
    from tsallis.llm.data import read_rows

    return read_rows(data, answers=not cfg.free_form)


def _eval_config(args: argparse.Namespace):
    """(model or checkpoint, run directory or None, config) of an eval command, all checked before loading."""
    from tsallis.llm.config import check_value, load_config

    target, run_dir = resolve_eval_target(args.checkpoint)
    if target != "toy":  # a corrupt model file is named before the data is read
        from tsallis.llm.loading import check_model_files

        check_model_files(target)
    from tsallis.llm.rundir import run_config_path

    cfg_path = args.config or (run_config_path(run_dir) if run_dir is not None else None)
    cfg = load_config(cfg_path, flags=_flags(args))
    if cfg.task in ("finqa", "hotpotqa", "musique") and not Path(cfg.data_dir).expanduser().is_dir():
        raise InputError(f"data_dir {cfg.data_dir!r} is not a directory: pass --data-dir PATH (the folder of the "
                         f"official {cfg.task} files, docs/datasets.md)")
    if args.scorer is not None and cfg.free_form:
        raise InputError("--scorer checks an answer split off after the delimiter; this run's completions are free "
                         "(completion_format 'free'), scored by its reward functions: drop --scorer, or pass "
                         "--reward-funcs")
    if args.scorer is not None:
        from tsallis.llm.config import ScorerId

        check_value("--scorer", args.scorer, ScorerId)
    return target, run_dir, cfg


def _eval_prompts(examples, tok, cfg, context: int | None):
    """The examples with their prompts rendered (chat template), each checked to fit the model's context."""
    import dataclasses

    from tsallis.llm.data import check_chat_prompts, check_prompt_length, render_prompt, warn_overflow

    check_chat_prompts(examples, tok, chat_template=cfg.chat_template)
    out = [dataclasses.replace(ex, prompt=render_prompt(ex.prompt, tok, chat_template=cfg.chat_template))
           for ex in examples]
    delimiter = 0 if cfg.free_form else len(tok.encode(cfg.resolved_delimiter, add_special_tokens=False))
    budget = cfg.max_rationale_tokens + delimiter + cfg.max_answer_tokens
    over = [ex for ex in out
            if check_prompt_length(ex, len(tok(ex.prompt, add_special_tokens=False)["input_ids"]), budget, context)]
    warn_overflow(over, budget, context)
    return out


def _eval_output(args: argparse.Namespace, target, run_dir: Path | None, cfg, k: int, n: int, scorer: str,
                 data: str, split: str) -> Path:
    """Where `tsallis llm eval` writes, checked before the evaluation runs: --out (a new file unless
    --overwrite), or RUN/eval/ (or ./) with a name that encodes every setting that changes the result (the
    readable ones, then a hash of them all), so that two evaluations never share a file."""
    if args.out:
        return _check_new_file(args.out, "--out", args.overwrite)
    import hashlib

    folder = check_output_dir(run_dir / "eval" if run_dir is not None else Path("."), "the evaluation folder")
    settings = {name: getattr(cfg, name) for name in EVAL_FIELDS
                if name != "progress_bar" and (cfg.free_form or name not in FREE_EVAL_FIELDS)}
    settings.update(target=str(Path(str(target)).resolve()) if target != "toy" else "toy", split=split, k=k,
                    **({"n": n} if n != k else {}), scorer=scorer, max_examples=args.max_examples, data=data)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]
    kind, _, file = data.partition(":")
    label = f"{kind}_{Path(file).name}" if file else kind  # the file scored (the hash tells paths apart)
    samples = f"k{k}" if n == k else f"k{k}of{n}"
    name = (f"eval_{Path(str(target)).name}_{label}_{split}_{samples}_{scorer}_n{args.max_examples or 'all'}_"
            f"{digest}.json")
    out = folder / name
    if out.exists() and not args.overwrite:
        raise InputError(f"{str(out)!r} holds an evaluation with these same settings: pass --overwrite to redo it, "
                         "or --out PATH to write elsewhere")
    return out


def _cmd_eval(args: argparse.Namespace) -> int:
    target, run_dir, cfg = _eval_config(args)
    k = args.k or cfg.eval_samples
    n = args.n or k
    if n < k:
        raise InputError(f"--n {n} < --k {k}: p@k needs at least k samples per example; pass --n >= {k} (or drop it: "
                         "n = k)")
    # the trainer's evaluation hook scores with it too; free completions: the reward functions
    scorer = "reward" if cfg.free_form else args.scorer or cfg.resolved_eval_scorer
    data, split = _eval_source(cfg, args.split, run_dir)
    out = _eval_output(args, target, run_dir, cfg, k, n, scorer, data, split)
    from tsallis.llm.evaluate import Completion, evaluate, score_completions

    examples = _eval_examples(cfg, data, split)
    if split != args.split and split == "train":
        print(f"note: the run has no eval_task, so --split {args.split} scores the task's own rows, {data} (split "
              "'train'); pass --eval-task jsonl:FILE to score held-out rows", file=sys.stderr)
    if args.max_examples:
        examples = examples[:args.max_examples]
    funcs = None
    if cfg.free_form:  # the functions exist and every column they need is there, before the model loads
        from tsallis.llm.step import resolve_reward_funcs

        funcs = resolve_reward_funcs(None, cfg, examples)
    model, tok = _load_eval_model(target, cfg, args.cache_dir)
    examples = _eval_prompts(examples, tok, cfg, getattr(model.config, "max_position_embeddings", None))
    delim = cfg.resolved_delimiter
    result = evaluate(model, tok, examples, k=k, n=n, max_rationale_tokens=cfg.max_rationale_tokens,
                      max_answer_tokens=cfg.max_answer_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                      delimiter=delim, scorer=scorer, ties=cfg.eval_ties, batch_size=cfg.eval_batch_size,
                      seed=cfg.seed, progress=cfg.progress_bar, free_form=cfg.free_form, reward_funcs=funcs,
                      reward_weights=cfg.reward_weights)
    extras = () if cfg.free_form else EXTRA_SCORERS.get(cfg.task, ())
    completions = [[Completion(t, f) for t, f in zip(r.completions, r.forced)] for r in result.records] if extras \
        else []
    for extra in extras:
        if extra != result.scorer:
            other = score_completions(examples, completions, scorer=extra, delimiter=delim, ties=cfg.eval_ties, k=k)
            result.metrics.update({f"{extra}/{m}": v for m, v in other.metrics.items()
                                   if m in ("p@1", f"p@{k}", f"p@{k}_se", f"maj@{k}", "mean_score")})
    result.settings.update(model=str(target), task=cfg.task, data=data, split=split, data_dir=cfg.data_dir,
                           prompt_style=cfg.prompt_style, data_seed=cfg.data_seed, n_examples=len(examples))
    out.parent.mkdir(parents=True, exist_ok=True)
    result.save(out)
    print(json.dumps({"model": str(target), "task": cfg.task, "data": data, "split": split, "k": k, "n": n,
                      "scorer": result.scorer, "metrics": result.metrics, "output": str(out)}, indent=2))
    return 0


def register_eval(sub) -> None:
    from tsallis.llm.config import PosInt

    p = sub.add_parser(
        "eval", help="p@1, p@k, maj@k of a checkpoint on a dataset split (or the toy task)",
        formatter_class=HelpFormatter, allow_abbrev=False,
        description="Sample k completions per example with budget forcing and score them (paper Sec. 7: k=16, "
                    "relaxed match; EM/F1 for HotpotQA/MuSiQue and the numeric rule for FinQA are added). "
                    "CHECKPOINT is a run directory (its best/ checkpoint), a checkpoint directory, a Hugging Face "
                    "model directory or 'toy'. Task, data and sampling settings come from the run's run_config.json "
                    "(or --config), then from the flags. A run of free completions (completion_format free) is "
                    "scored by its reward functions (--reward-funcs): mean reward, clipped ratio. Example: "
                    "tsallis llm eval runs/paper/finqa_cold --split test --k 16")
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    p.add_argument("--config", help="YAML or JSON config (default: the run's run_config.json)")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"],
                   help="dataset split; the toy, jsonl:/parquet: and 'dataset' runs have two: train (the task's rows) "
                        "and eval (eval_task's, or a 'dataset' run's kept evaluation rows), which validation and "
                        "test both select; the output names the data and split scored")
    p.add_argument("--k", type=typed(PosInt), metavar="K", help="the k of p@k and maj@k (default: eval_samples)")
    p.add_argument("--n", type=typed(PosInt), metavar="N", help="samples per example, >= k (default: k); p@k is "
                                                                "Chen et al.'s unbiased estimator from n, with its "
                                                                "standard error over examples (p@k_se)")
    p.add_argument("--scorer", help="answer check: relaxed, em, f1, numeric, exact (default: eval_scorer, the "
                                    "in-training evaluation's; null: 'exact' for the toy task, else 'relaxed')")
    p.add_argument("--max-examples", type=typed(PosInt), metavar="N",
                   help="evaluate only the first N examples of the split")
    p.add_argument("--out", help="JSON output, a new file unless --overwrite (default: RUN/eval/ or ./, named "
                                 "eval_<ckpt>_<task>_<split>_k<k>_<scorer>_n<max-examples>_<hash of every "
                                 "setting>.json)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("--cache-dir", help="cache of the toy model")
    add_config_flags(p, list(EVAL_FIELDS))
    p.set_defaults(func=_cmd_eval)


def _cmd_make_tiny_model(args: argparse.Namespace) -> int:
    from tsallis.llm.tiny import make_tiny_model

    _check_new_folder(args.out)
    if args.hidden % 2:
        raise InputError(f"--hidden must be even (two attention heads of hidden/2 each); got {args.hidden}")
    print(make_tiny_model(args.out, n_layer=args.layers, hidden=args.hidden, seed=args.seed))
    return 0


def register_make_tiny_model(sub) -> None:
    from tsallis.llm.config import PosInt, Range, Seed

    p = sub.add_parser("make-tiny-model", help="save a tiny random Qwen3-architecture model + byte tokenizer "
                                               "with a ChatML chat template (the CPU stand-in of "
                                               "configs/tiny/*.yaml)",
                       description="Save an untrained tiny Qwen3-architecture model (random init) and a byte-level "
                                   "tokenizer with Qwen3's markup tokens and a ChatML chat template "
                                   "(chat_template.jinja), so conversational prompts render: the CPU stand-in of "
                                   "Qwen3-0.6B in configs/tiny/*.yaml.",
                       formatter_class=HelpFormatter)
    p.add_argument("--out", default="runs/tiny-model", help="a new folder (as in configs/tiny)")
    p.add_argument("--layers", type=typed(PosInt), default=2, metavar="N", help="decoder layers")
    p.add_argument("--hidden", type=typed(Annotated[int, Range("[2, inf)")]), default=32, metavar="N",
                   help="hidden size (even)")
    p.add_argument("--seed", type=typed(Seed), default=0, metavar="N", help="initialisation seed")
    p.set_defaults(func=_cmd_make_tiny_model)


SUBCOMMANDS = [register_train, register_eval, register_pretrain_toy, register_make_tiny_model, register_measure_p0,
               register_testbed, register_study]


def register(subparsers) -> None:
    p = subparsers.add_parser("llm", help="LLM training: GRPO, GARL, PAFT, SFT on local HF causal LMs",
                              description="LLM training and evaluation (docs/llm.md)")
    sub = p.add_subparsers(dest="llm_command", required=True, metavar="LLM_COMMAND")
    for add in SUBCOMMANDS:
        add(sub)

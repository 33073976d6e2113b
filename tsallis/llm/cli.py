"""`tsallis llm ...`: train (GRPO/GARL/PAFT/SFT), eval (p@1/p@k/maj@k of a checkpoint), pretrain-toy,
make-tiny-model, measure-p0, testbed (can the toy model test the paper?).

No torch at import time: the heavy modules load inside each command. To add a sub-subcommand, write a
`register_<name>(subparsers)` function and append it to SUBCOMMANDS (the `eval` command of the data/metrics
work plugs in here).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def field_docs() -> dict[str, str]:
    """TrainConfig field -> its docstring, read from config.py's source (no import of torch)."""
    src = (Path(__file__).parent / "config.py").read_text()
    cls = next(n for n in ast.parse(src).body if isinstance(n, ast.ClassDef) and n.name == "TrainConfig")
    docs, last = {}, None
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            last = node.target.id
        elif last and isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant):
            docs[last] = " ".join(str(node.value.value).split())
            last = None
    return docs


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    from tsallis.llm.config import field_names, parse_value

    group = p.add_argument_group("config fields (override the --config file; see docs/llm.md)")
    for name in field_names():
        group.add_argument(f"--{name.replace('_', '-')}", dest=f"cfg__{name}", type=parse_value,
                           default=argparse.SUPPRESS, metavar="V", help=field_docs().get(name, "").replace("%", "%%"))


def _overrides(args: argparse.Namespace) -> dict:
    return {k[len("cfg__"):]: v for k, v in vars(args).items() if k.startswith("cfg__")}


def _cmd_train(args: argparse.Namespace) -> int:
    from tsallis.llm.config import load_config

    try:
        cfg = load_config(args.config, _overrides(args))
    except (ValueError, FileNotFoundError) as err:
        print(f"tsallis llm train: error: {err}", file=sys.stderr)
        return 2
    from tsallis.errors import InputError, NonFiniteError
    from tsallis.llm.trainer import Trainer

    try:
        result = Trainer(cfg, resume_from=args.resume, cache_dir=args.cache_dir).train()
    except (FileNotFoundError, InputError) as err:
        print(f"tsallis llm train: error: {err}", file=sys.stderr)
        return 2
    except NonFiniteError as err:
        print(f"tsallis llm train: {err}", file=sys.stderr)
        return 3
    last = result.history[-1] if result.history else {}
    print(json.dumps({"step": result.step, "checkpoint": result.last_checkpoint, "best": result.best_checkpoint,
                      "final": {k: v for k, v in last.items() if isinstance(v, (int, float))}}, indent=2))
    return 0


def register_train(sub) -> None:
    p = sub.add_parser("train", help="train a local HF causal LM with grpo, garl, paft or sft",
                       description="Train with GRPO, GARL, PAFT or SFT. Every config field is a flag; "
                                   "example: tsallis llm train --method garl --q 0.75 --output-dir runs/garl")
    p.add_argument("--config", help="YAML or JSON file of config fields (flags override it)")
    p.add_argument("--resume", help="checkpoint directory (or run directory) to continue exactly")
    p.add_argument("--cache-dir", help="cache of the toy model (default ~/.cache/tsallis/toy)")
    _add_config_flags(p)
    p.set_defaults(func=_cmd_train)


def _cmd_pretrain_toy(args: argparse.Namespace) -> int:
    from tsallis.llm.toy import ToyModelSpec, pretrain_toy_model, pretrained_toy_model

    _check_int("--train-steps", args.train_steps, 1)
    spec = ToyModelSpec(train_steps=args.train_steps, sloppiness=args.sloppiness, seed=args.seed)
    path = pretrain_toy_model(spec, args.out) if args.out else pretrained_toy_model(spec, args.cache_dir)
    print(path)
    return 0


def register_pretrain_toy(sub) -> None:
    from tsallis.llm.toy import ToyModelSpec

    d = ToyModelSpec()
    p = sub.add_parser("pretrain-toy", help="pretrain the tiny CPU testbed model (cached) and print its path")
    p.add_argument("--out", help="save here (default: the cache, reused when present)")
    p.add_argument("--cache-dir", help="cache root (default ~/.cache/tsallis/toy, or $TSALLIS_CACHE/toy)")
    p.add_argument("--train-steps", type=int, default=d.train_steps)
    p.add_argument("--sloppiness", type=float, default=d.sloppiness,
                   help="probability that a pretraining step writes a random digit")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_pretrain_toy)


def _check_int(name: str, value: int, lo: int, hi: int | None = None) -> None:
    from tsallis.errors import InputError

    if value < lo or (hi is not None and value > hi):
        raise InputError(f"{name} must be an integer in [{lo}, {hi if hi is not None else 'inf'}); got {value}")


def _check_levels(levels: list[int]) -> None:
    from tsallis.errors import InputError
    from tsallis.llm.toy import MAX_CHAIN

    if len(levels) < 1 or any(not 1 <= n <= MAX_CHAIN for n in levels):
        raise InputError(f"--levels must be chain lengths in [1, {MAX_CHAIN}]; got {levels}")


def _cmd_measure_p0(args: argparse.Namespace) -> int:
    from tsallis.llm.experiments import measure_p0

    _check_levels(args.n_steps)
    _check_int("--num-samples", args.num_samples, 1)
    _check_int("--n-prompts", args.n_prompts, 2)
    res = measure_p0(model=args.model, n_steps=args.n_steps, style=args.style, num_samples=args.num_samples,
                     n_prompts=args.n_prompts, seed=args.seed, cache_dir=args.cache_dir)
    print(json.dumps(res, indent=2))
    return 0


def register_measure_p0(sub) -> None:
    p = sub.add_parser("measure-p0", help="Monte Carlo p0 = mean_x P(y*|x) of a model on the toy task")
    p.add_argument("--model", default="toy")
    p.add_argument("--n-steps", type=int, nargs="+", default=[8, 11, 14, 17], help="chain lengths")
    p.add_argument("--style", default="warm", choices=["warm", "cold"])
    p.add_argument("--num-samples", type=int, default=16)
    p.add_argument("--n-prompts", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir")
    p.set_defaults(func=_cmd_measure_p0)


def _cmd_testbed(args: argparse.Namespace) -> int:
    from tsallis.errors import InputError

    _check_levels(args.levels)
    _check_int("--num-samples", args.num_samples, 1)
    _check_int("--n-prompts", args.n_prompts, 2)
    if args.json:
        parent = Path(args.json).expanduser().resolve().parent
        if not parent.is_dir():
            raise InputError(f"--json {args.json!r}: folder {str(parent)!r} does not exist")
    from tsallis.llm.testbed import measure_testbed

    report = measure_testbed(args.model, args.levels, n_prompts=args.n_prompts, num_samples=args.num_samples,
                             seed=args.seed, cache_dir=args.cache_dir, verbose=not args.quiet)
    d = report.to_dict()
    print(f"model {report.model}: pretraining loss {report.final_pretrain_loss:.4f} (irreducible "
          f"{report.irreducible_loss:.4f}), {report.pretrain_cpu_seconds:.0f} CPU s; floor {report.floor:.0e}")
    print(f"{'n':>3} {'p0':>9} {'+-se':>8} {'median logP':>11} {'step acc':>8} {'copy':>5} {'hits/step':>9}")
    for x in report.levels:
        print(f"{x['difficulty']:>3} {x['p0']:>9.2e} {x['p0_stderr']:>8.1e} {x['median_log_p']:>11.2f} "
              f"{x['per_step_accuracy']:>8.3f} {x['answer_copy_rate']:>5.2f} {x['expected_hits_per_step']:>9.3f}")
    for c in d["criteria"]:
        print(f"[{'pass' if c['passed'] else 'FAIL'}] {c['criterion']}: {c['value']:.4g}")
    if args.json:
        path = Path(args.json)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(d, indent=2))
        tmp.replace(path)
    return 0 if all(c["passed"] for c in d["criteria"]) else 1


def register_testbed(sub) -> None:
    p = sub.add_parser("testbed", help="build/load the toy starting model and measure whether it can test the paper",
                       description="Per difficulty level (chain length n): p0 with its standard error, median log P, "
                                   "sampled per-step accuracy, expected correct samples per step; the uniform-answer "
                                   "floor, the exact irreducible and the final pretraining loss, the pretraining CPU "
                                   "time; and the four testbed criteria. Exit 0 when all pass, 1 otherwise.")
    p.add_argument("--json", help="write the report (levels, floor, losses, criteria) here")
    p.add_argument("--model", default="toy", help="'toy' (the cached default) or a folder from pretrain-toy")
    p.add_argument("--levels", type=int, nargs="+", default=[8, 11, 14, 17], help="chain lengths to measure")
    p.add_argument("--n-prompts", type=int, default=64, help="held-out prompts per level (default 64)")
    p.add_argument("--num-samples", type=int, default=16, help="sampled rationales per prompt (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", help="cache root of the toy model")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_testbed)


def _cmd_study(args: argparse.Namespace) -> int:
    from tsallis.errors import InputError

    _check_int("--workers", args.workers, 1, 64)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise InputError(f"--out {str(out)!r} exists and is not empty: pass another folder, or --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    from tsallis.llm.study import escape_study, noise_study, testbed_study, write_verdicts

    log = str(out / "runs.log")
    tb = testbed_study(out, size=args.size, cache_dir=args.cache_dir, verbose=True)
    outputs = []
    if args.which in ("escape", "all"):
        outputs.append(escape_study(out, size=args.size, workers=args.workers, cache_dir=args.cache_dir, log=log,
                                    testbed=tb))
    if args.which in ("noise", "all"):
        outputs.append(noise_study(out, size=args.size, workers=args.workers, cache_dir=args.cache_dir, log=log))
    path = write_verdicts(out, outputs)
    for o in outputs:
        for v in o.verdicts:
            print(f"{v.claim}: {v.outcome}\n  criterion: {v.criterion}\n  evidence: {v.evidence}")
    print(f"verdicts: {path}")
    return 0


def register_study(sub) -> None:
    p = sub.add_parser("study", help="the toy-LM cold-start studies: escape time vs p0, label noise, schedule",
                       description="Runs the testbed measurement, then experiment (1) escape time against p0 "
                                   "(SGD learning-rate sweep, AdamW and SGD runs, censored-regression slopes) and/or "
                                   "(2)-(3) label noise with the q=1->0 schedule, writing JSON/CSV/PNG and "
                                   "verdicts.json into --out; progress per run in OUT/runs.log. --size full is the "
                                   "whole grid (hours on 2 cores); default is the reproduce subset.")
    p.add_argument("which", choices=["escape", "noise", "all"])
    p.add_argument("--out", required=True, help="output folder (must be new or empty, unless --overwrite)")
    from tsallis.llm.study import SIZES  # light: no torch at import

    p.add_argument("--size", default="full", choices=list(SIZES), help="study size (tsallis.llm.study.SIZES)")
    p.add_argument("--workers", type=int, default=2, help="parallel training processes (one torch thread each)")
    p.add_argument("--cache-dir", help="cache root of the toy model")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    p.set_defaults(func=_cmd_study)


# ------------------------------------------------------------------------------------------------------- eval


def resolve_eval_target(path: str | Path) -> tuple[Path | str, Path | None]:
    """(model or checkpoint to load, run directory or None) for `tsallis llm eval PATH`.

    PATH may be a run directory (its best/ checkpoint, else its latest checkpoint), a checkpoint directory
    (run/best or run/checkpoints/checkpoint-N), a Hugging Face model directory, or "toy"."""
    if str(path) == "toy":
        return "toy", None
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{str(path)!r} is not a directory: give a run directory, a checkpoint directory "
                                "(run/best, run/checkpoints/checkpoint-N) or a Hugging Face model directory")
    if (path / "config.json").exists() and (path / "metrics.jsonl").exists():  # a run directory
        if (path / "best").is_dir():
            return path / "best", path
        latest = path / "checkpoints" / "latest"
        if latest.exists():
            return path / "checkpoints" / latest.read_text().strip(), path
        raise FileNotFoundError(f"run directory {str(path)!r} has no best/ and no checkpoints/latest")
    if (path / "trainer_state.pt").exists():  # a checkpoint
        for run in (path.parent, path.parent.parent):
            if (run / "metrics.jsonl").exists() and (run / "config.json").exists():
                return path, run
        return path, None
    return path, None


EXTRA_SCORERS = {"finqa": ("numeric",), "hotpotqa": ("em", "f1"), "musique": ("em", "f1")}
"""Scorers reported beside the main one (`eval_scorer`): our FinQA numeric rule, the official EM / token F1."""


def _replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def _load_eval_model(target, cfg, cache_dir):
    import torch

    from tsallis.llm.loading import load_model_and_tokenizer, resolve_model_path

    on_cuda = torch.cuda.is_available()
    plain = _replace(cfg, lora_r=0, gradient_checkpointing=False)
    if target != "toy" and (Path(target) / "adapter_config.json").exists():  # a LoRA checkpoint: base + adapter
        from peft import PeftModel

        model, _ = load_model_and_tokenizer(resolve_model_path(cfg.model, cache_dir), plain, on_cuda=on_cuda)
        model = PeftModel.from_pretrained(model, str(target), local_files_only=True).merge_and_unload()
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(target, local_files_only=True)
        tok.pad_token = tok.pad_token or tok.eos_token
    else:
        model, tok = load_model_and_tokenizer(resolve_model_path(str(target), cache_dir), plain, on_cuda=on_cuda)
    return model.to("cuda" if on_cuda else "cpu").eval(), tok


def _eval_examples(cfg, split: str):
    from tsallis.llm.config import DATASETS

    if cfg.task == "toy":
        from tsallis.llm.toy import make_examples, toy_task

        return make_examples(toy_task(cfg), "train" if split == "train" else "eval")
    if cfg.task in DATASETS:
        from tsallis.llm.data import load_split

        return load_split(cfg.task, Path(cfg.data_dir).expanduser(), split, seed=cfg.data_seed,
                          style=cfg.prompt_style, template=cfg.prompt_template, delimiter=cfg.resolved_delimiter)
    from tsallis.llm.data import load_examples

    return load_examples(cfg)[0]


def _cmd_eval(args: argparse.Namespace) -> int:
    from tsallis.llm.config import load_config

    try:
        target, run_dir = resolve_eval_target(args.checkpoint)
        cfg_path = args.config or (run_dir / "config.json" if run_dir is not None else None)
        cfg = load_config(cfg_path, _overrides(args))
        if cfg.task in ("finqa", "hotpotqa", "musique") and not Path(cfg.data_dir).expanduser().is_dir():
            raise FileNotFoundError(f"data_dir {cfg.data_dir!r} is not a directory: pass --data-dir PATH (the "
                                    f"folder of the official {cfg.task} files, docs/datasets.md)")
    except (ValueError, FileNotFoundError) as err:
        print(f"tsallis llm eval: error: {err}", file=sys.stderr)
        return 2
    from tsallis.llm.evaluate import Completion, evaluate, score_completions

    split = args.split
    examples = _eval_examples(cfg, split)
    if args.max_examples:
        examples = examples[:args.max_examples]
    model, tok = _load_eval_model(target, cfg, args.cache_dir)
    if cfg.chat_template:
        import dataclasses

        examples = [dataclasses.replace(ex, prompt=tok.apply_chat_template(
            [{"role": "user", "content": ex.prompt}], tokenize=False, add_generation_prompt=True,
            enable_thinking=True)) for ex in examples]
    k = args.k or cfg.eval_samples
    scorer = args.scorer or ("exact" if cfg.task == "toy" else cfg.eval_scorer)
    delim = cfg.resolved_delimiter
    result = evaluate(model, tok, examples, k=k, max_rationale_tokens=cfg.max_rationale_tokens,
                      max_answer_tokens=cfg.max_answer_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                      delimiter=delim, scorer=scorer, ties=cfg.eval_ties, batch_size=cfg.eval_batch_size,
                      seed=cfg.seed)
    completions = [[Completion(t, f) for t, f in zip(r.completions, r.forced)] for r in result.records]
    for extra in EXTRA_SCORERS.get(cfg.task, ()):
        if extra != result.scorer:
            other = score_completions(examples, completions, scorer=extra, delimiter=delim, ties=cfg.eval_ties)
            result.metrics.update({f"{extra}/{n}": v for n, v in other.metrics.items()
                                   if n in ("p@1", f"p@{k}", f"maj@{k}", "mean_score")})
    result.settings.update(model=str(target), task=cfg.task, split=split, data_dir=cfg.data_dir,
                           prompt_style=cfg.prompt_style, data_seed=cfg.data_seed, n_examples=len(examples))
    out = Path(args.out) if args.out else (
        (run_dir / "eval" if run_dir is not None else Path("."))
        / f"eval_{Path(str(target)).name}_{cfg.task.replace(':', '_').replace('/', '_')}_{split}_k{k}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    result.save(out)
    print(json.dumps({"model": str(target), "task": cfg.task, "split": split, "k": k, "scorer": result.scorer,
                      "metrics": result.metrics, "output": str(out)}, indent=2))
    return 0


def register_eval(sub) -> None:
    p = sub.add_parser(
        "eval", help="p@1, p@k, maj@k of a checkpoint on a dataset split (or the toy task)",
        description="Sample k completions per example with budget forcing and score them (paper Sec. 7: k=16, "
                    "relaxed match; EM/F1 for HotpotQA/MuSiQue and the numeric rule for FinQA are added). "
                    "CHECKPOINT is a run directory (its best/ checkpoint), a checkpoint directory, a Hugging Face "
                    "model directory or 'toy'. Task, data and sampling settings come from the run's config.json "
                    "(or --config), then from the flags. Example: tsallis llm eval runs/paper/finqa_cold "
                    "--split test --k 16")
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    p.add_argument("--config", help="YAML or JSON config (default: the run's config.json)")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"], help="(default test)")
    p.add_argument("--k", type=int, help="samples per example (default: eval_samples)")
    p.add_argument("--scorer", help="answer check (default: eval_scorer; 'exact' for the toy task)")
    p.add_argument("--max-examples", type=int, help="evaluate only the first N examples of the split")
    p.add_argument("--out", help="JSON output (default: RUN/eval/eval_<ckpt>_<task>_<split>_k<k>.json, or ./)")
    p.add_argument("--cache-dir", help="cache of the toy model")
    _add_config_flags(p)
    p.set_defaults(func=_cmd_eval)


def _cmd_make_tiny_model(args: argparse.Namespace) -> int:
    from tsallis.llm.tiny import make_tiny_model

    print(make_tiny_model(args.out, n_layer=args.layers, hidden=args.hidden, seed=args.seed))
    return 0


def register_make_tiny_model(sub) -> None:
    p = sub.add_parser("make-tiny-model", help="save a tiny random Qwen3-architecture model + byte tokenizer "
                                               "(the CPU stand-in of configs/tiny/*.yaml)")
    p.add_argument("--out", default="runs/tiny-model", help="(default runs/tiny-model, as in configs/tiny)")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_make_tiny_model)


SUBCOMMANDS = [register_train, register_eval, register_pretrain_toy, register_make_tiny_model, register_measure_p0,
               register_testbed, register_study]


def register(subparsers) -> None:
    p = subparsers.add_parser("llm", help="LLM training: GRPO, GARL, PAFT, SFT on local HF causal LMs")
    sub = p.add_subparsers(dest="llm_command", required=True, metavar="LLM_COMMAND")
    for add in SUBCOMMANDS:
        add(sub)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tsallis.llm")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["llm", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args) or 0)

"""`tsallis llm ...`: train (GRPO/GARL/PAFT/SFT), pretrain-toy, measure-p0.

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
    from tsallis.llm.trainer import NonFiniteError, Trainer

    try:
        result = Trainer(cfg, resume_from=args.resume, cache_dir=args.cache_dir).train()
    except FileNotFoundError as err:
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

    spec = ToyModelSpec(train_steps=args.train_steps, sloppiness=args.sloppiness, seed=args.seed)
    path = pretrain_toy_model(spec, args.out) if args.out else pretrained_toy_model(spec, args.cache_dir)
    print(path)
    return 0


def register_pretrain_toy(sub) -> None:
    p = sub.add_parser("pretrain-toy", help="pretrain the tiny CPU testbed model (cached) and print its path")
    p.add_argument("--out", help="save here (default: the cache, reused when present)")
    p.add_argument("--cache-dir", help="cache root (default ~/.cache/tsallis/toy, or $TSALLIS_CACHE/toy)")
    p.add_argument("--train-steps", type=int, default=1500)
    p.add_argument("--sloppiness", type=float, default=0.75, help="per-step error rate of pretraining rationales")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_pretrain_toy)


def _cmd_measure_p0(args: argparse.Namespace) -> int:
    from tsallis.llm.experiments import measure_p0

    res = measure_p0(model=args.model, n_steps=args.n_steps, style=args.style, num_samples=args.num_samples,
                     n_prompts=args.n_prompts, seed=args.seed, cache_dir=args.cache_dir)
    print(json.dumps(res, indent=2))
    return 0


def register_measure_p0(sub) -> None:
    p = sub.add_parser("measure-p0", help="Monte Carlo p0 = mean_x P(y*|x) of a model on the toy task")
    p.add_argument("--model", default="toy")
    p.add_argument("--n-steps", type=int, nargs="+", default=[0, 2, 4, 6])
    p.add_argument("--style", default="warm", choices=["warm", "cold"])
    p.add_argument("--num-samples", type=int, default=64)
    p.add_argument("--n-prompts", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir")
    p.set_defaults(func=_cmd_measure_p0)


SUBCOMMANDS = [register_train, register_pretrain_toy, register_measure_p0]


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

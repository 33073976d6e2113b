"""What a TRL user expects: reward functions with TRL's signature (several, weighted, logged per function), a
`datasets.Dataset` (plain or conversational) or a JSONL/Parquet file as input, conversational prompts through the
chat template (never wrapped twice), LoRA through a `peft.LoraConfig`, progress bars for evaluation.

Tiny random-init models only (a GPT-2 with the toy's character tokenizer, a Qwen3 with the byte tokenizer and a
ChatML template), a step or two each.
"""

from __future__ import annotations

import inspect
import json
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")

from tsallis.errors import InputError  # noqa: E402
from tsallis.llm.config import TrainConfig  # noqa: E402
from tsallis.llm.data import examples_from_rows, load_splits, read_rows, to_dataset  # noqa: E402
from tsallis.llm.rewards import REWARD_FUNCS, SCORERS, score_reward_funcs  # noqa: E402
from tsallis.llm.tiny import make_tiny_model  # noqa: E402
from tsallis.llm.toy import tiny_random_model  # noqa: E402
from tsallis.llm.trainer import Trainer  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ROWS = [{"prompt": f"R{i}{i};a{i}:", "answer": f"{i}{i}", "target": str(i)} for i in range(4)]
CHAT = [{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"{i}+{i}?"}],
         "answer": str(2 * i), "level": i} for i in range(4)]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return str(tiny_random_model(tmp_path_factory.mktemp("gpt2"), n_embd=16))


@pytest.fixture(scope="module")
def qwen(tmp_path_factory):
    return str(make_tiny_model(tmp_path_factory.mktemp("qwen") / "m", hidden=16))


def _cfg(model, out, **kw):
    base = dict(model=model, output_dir=str(out), max_steps=1, num_generations=3, prompts_per_step=2,
                max_rationale_tokens=5, max_answer_tokens=3, learning_rate=1e-2, progress_bar=False, save_every=0,
                delimiter=">")
    return TrainConfig(**{**base, **kw})


# ---------------------------------------------------------------------------------------------------- rewards


def test_trl_signature_reward_functions_get_the_columns_are_weighted_and_logged(gpt2, tmp_path):
    calls = []

    def contains_target(prompts, completions, completion_ids, target, **kwargs):
        calls.append(dict(prompts=prompts, completions=completions, completion_ids=completion_ids, target=target,
                          **kwargs))
        return [float(t in c.split(">")[-1]) for c, t in zip(completions, target)]

    def constant(completions, **kwargs):  # TRL's minimal form
        return [1.0] * len(completions)

    cfg = _cfg(gpt2, tmp_path, method="grpo", reward_weights=[2.0, 0.5])
    tr = Trainer(cfg, datasets.Dataset.from_list(ROWS), reward_funcs=[contains_target, constant])
    seen = []
    real_prepare = tr.method.prepare
    tr.method.prepare = lambda rewards, *a: seen.extend(rewards) or real_prepare(rewards, *a)
    m = tr.train().history[-1]
    (call,) = calls
    n = cfg.prompts_per_step * cfg.num_generations
    assert len(call["prompts"]) == len(call["completions"]) == len(call["completion_ids"]) == len(call["target"]) == n
    assert call["prompts"][0] == call["prompts"][cfg.num_generations - 1] != call["prompts"][cfg.num_generations]
    assert {r["prompt"]: r["target"] for r in ROWS}[call["prompts"][0]] == call["target"][0]  # row's own column
    assert {"answer", "aliases", "id", "trainer_state", "delimiter"} <= set(call)
    assert all(isinstance(c, str) and ">" in c for c in call["completions"])  # plain prompts: plain completions
    expected = torch.tensor(contains_target(**{k: call[k] for k in ("prompts", "completions", "completion_ids",
                                                                    "target")})).view(-1, 3)
    torch.testing.assert_close(seen[0].double(), 2.0 * expected.double() + 0.5)  # GRPO trains on the weighted sum
    assert m["rewards/constant/mean"] == 1.0 and m["rewards/constant/std"] == 0.0
    assert m["rewards/contains_target/mean"] == pytest.approx(float(expected.mean()))
    assert m["reward"] == pytest.approx(2.0 * float(expected.mean()) + 0.5)


def test_garl_weights_come_from_p_y_star_not_from_the_reward(gpt2, tmp_path):
    """GARL/PAFT's update uses w_m = p(y*|x, z_m): a different reward changes the logged reward, not the step."""
    params, rewards = [], []
    for value in (0.0, 1.0):
        tr = Trainer(_cfg(gpt2, tmp_path / str(value), method="garl"), ROWS,
                     reward_funcs=[lambda completions, value=value, **kw: [value] * len(completions)])
        rewards.append(tr.train().history[-1]["reward"])
        params.append(torch.cat([p.detach().reshape(-1) for p in tr.unwrapped.parameters()]))
    assert rewards == [0.0, 1.0]
    torch.testing.assert_close(params[0], params[1], rtol=0, atol=0)


def test_reward_function_errors_name_the_function(gpt2, tmp_path):
    with pytest.raises(InputError, match=r"reward function 'needs_gold' needs the column\(s\) \['gold'\], which "
                                         r"train_examples, row 0 lacks"):
        Trainer(_cfg(gpt2, tmp_path), ROWS, reward_funcs=[lambda_named("needs_gold", "gold")])
    short = lambda completions, **kw: [0.0]  # noqa: E731
    with pytest.raises(InputError, match="reward function '<lambda>' must return a list of 6 floats"):
        Trainer(_cfg(gpt2, tmp_path, method="grpo"), ROWS, reward_funcs=[short]).train()
    with pytest.raises(InputError, match="every reward function returned None for a completion"):
        Trainer(_cfg(gpt2, tmp_path / "n", method="grpo"), ROWS,
                reward_funcs=[lambda completions, **kw: [None] * len(completions)]).train()
    with pytest.raises(InputError, match="unknown reward function 'bleu'"):
        Trainer(_cfg(gpt2, tmp_path), ROWS, reward_funcs=["bleu"])


def lambda_named(name, column):
    """A reward function called `name` that names the column `column` as a required argument."""
    def f(prompts, completions, completion_ids, **kwargs):
        return [0.0] * len(completions)

    f.__name__ = name
    f.__signature__ = inspect.Signature([inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                                         for n in ("prompts", "completions", "completion_ids", column)])
    return f


def test_paper_metrics_as_reward_functions():
    """Each evaluation scorer as a TRL reward function gives the scorer's score of the text after the delimiter."""
    kw = dict(prompts=["p"] * 3, completion_ids=[[1]] * 3, answer=["Paris", "Paris", "1.6%"],
              aliases=[["City of Light"], [], []], task=["musique", "musique", "finqa"],
              exe_ans=[None, None, 0.01639], question=["", "", "growth in %"], delimiter="</think>")
    out = score_reward_funcs([REWARD_FUNCS[n] for n in ("exact", "em", "relaxed", "numeric")],
                             completions=["z</think> city of light", "z</think>It is Paris.", "z</think>1.64%"], **kw)
    assert out == {"exact": [0.0, 0.0, 0.0], "em": [1.0, 0.0, 0.0], "relaxed": [1.0, 1.0, 0.0],
                   "numeric": [0.0, 0.0, 1.0]}



# ---------------------------------------------------------------------------------------- datasets and prompts


def test_conversational_dataset_trains_and_evaluates_through_the_chat_template(qwen, tmp_path):
    seen = []

    def level_reward(prompts, completions, completion_ids, level, **kwargs):
        seen.append((prompts, completions, level))
        return [float(x) for x in level]

    train, val = datasets.Dataset.from_list(CHAT), datasets.Dataset.from_list(CHAT[:2])
    cfg = _cfg(qwen, tmp_path, method="garl", delimiter="</think>", eval_every=1, max_steps=2)
    tr = Trainer(cfg, train, val, reward_funcs=[level_reward])
    text = tr.policy.format_prompt(CHAT[1]["prompt"])
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n1+1?<|im_end|>\n"
                    "<|im_start|>assistant\n")
    m = tr.train().history[0]
    prompts, completions, levels = seen[0]
    assert isinstance(prompts[0], list) and prompts[0][1]["role"] == "user"
    assert completions[0][0]["role"] == "assistant" and "</think>" in completions[0][0]["content"]
    assert m["rewards/level_reward/mean"] == pytest.approx(sum(levels) / len(levels)) and "eval/accuracy" in m


def test_warm_prompts_render_through_the_tokenizers_template_once(qwen, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warm = load_splits("musique", FIXTURES / "musique", style="warm")["train"][:2]
    cfg = _cfg(qwen, tmp_path, task="musique", data_dir=str(FIXTURES / "musique"), delimiter="</think>",
               chat_template=True)  # chat_template on: the conversational warm prompt is still wrapped once
    tr = Trainer(cfg, warm, [])
    text = tr.policy.format_prompt(warm[0].prompt)
    assert text.count("<|im_start|>user") == 1 and text.startswith("<|im_start|>user\nAnswer the question")
    assert text.endswith("<|im_start|>assistant\n")
    plain = [warm[0].__class__(id="p", prompt="2+2?", answer="4")]
    assert Trainer(cfg, plain, []).policy.format_prompt("2+2?").count("<|im_start|>user") == 1


@pytest.mark.parametrize("prompt, chat_template", [
    ("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", True),  # an old warm-template string, wrapped again
    ([{"role": "user", "content": "<|im_start|>user\nhi<|im_end|>"}], False),  # markup inside a message
])
def test_a_prompt_is_never_wrapped_twice(qwen, tmp_path, prompt, chat_template):
    rows = [{"prompt": prompt, "answer": "4"}]
    with pytest.raises(InputError, match=r"train_examples, row 0: the prompt already holds the chat template's markup "
                                         r"'<\|im_start\|>user'"):
        Trainer(_cfg(qwen, tmp_path, chat_template=chat_template), rows)
    ok = Trainer(_cfg(qwen, tmp_path, chat_template=False), [{"prompt": "<|im_start|>user\nhi", "answer": "4"}])
    assert ok.policy.format_prompt("<|im_start|>user\nhi") == "<|im_start|>user\nhi"  # a formatted string, used as is


def test_conversational_prompts_need_a_chat_template(gpt2, tmp_path):
    with pytest.raises(InputError, match="the tokenizer has no chat template"):
        Trainer(_cfg(gpt2, tmp_path), CHAT)


def test_paper_loaders_round_trip_through_a_dataset():
    """to_dataset (the TRL shape: prompt + columns) and back gives the same examples, scored the same."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for task in ("finqa", "hotpotqa", "musique"):
            for style in ("warm", "cold"):
                examples = load_splits(task, FIXTURES / task, style=style)["test"]
                back = examples_from_rows(to_dataset(examples), "ds")
                assert [(e.id, e.prompt, e.answer, e.aliases, e.task) for e in back] == [
                    (e.id, e.prompt, e.answer, e.aliases, e.task) for e in examples]
                for name, sc in SCORERS.items():
                    for a, b in zip(examples, back):
                        assert sc.score(a.answer, a) == sc.score(b.answer, b), (task, name)


def test_jsonl_and_parquet_rows(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "d.parquet")
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in CHAT) + "\n")
    rows = read_rows(f"parquet:{tmp_path / 'd.parquet'}")
    assert [(e.prompt, e.answer, e.meta["target"]) for e in rows] == [(r["prompt"], r["answer"], r["target"])
                                                                       for r in ROWS]
    chat = read_rows(f"jsonl:{tmp_path / 'd.jsonl'}")
    assert chat[2].prompt == CHAT[2]["prompt"] and chat[2].meta == {"level": 2}
    assert chat[2].source == f"{tmp_path / 'd.jsonl'}, line 3"


def test_a_prompt_longer_than_the_context_is_refused_at_load(gpt2, tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({"prompt": "7" * 300, "answer": "1"}) + "\n")
    cfg = _cfg(gpt2, tmp_path / "run", task=f"jsonl:{path}")
    with pytest.raises(InputError, match=rf"{path}, line 2: field 'prompt' is 300 tokens, beyond the model's "
                                         r"context of 256 tokens"):
        Trainer(cfg)
    path.write_text(json.dumps({"prompt": "7" * 250, "answer": "1"}) + "\n")  # fits, but not with a full budget
    with pytest.warns(UserWarning, match=r"1 prompt\(s\) .* leave less than the completion budget"):
        Trainer(cfg)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------------------------ LoRA


def test_lora_through_a_peft_lora_config(gpt2, tmp_path):
    from peft import LoraConfig

    from tsallis.llm.loading import lora_config

    defaults = lora_config(TrainConfig(lora_r=4))
    assert (defaults.r, defaults.lora_alpha, defaults.lora_dropout, defaults.target_modules) == (
        4, LoraConfig().lora_alpha, LoraConfig().lora_dropout, None)  # peft's defaults
    (tmp_path / "lora.json").write_text(json.dumps({"r": 4, "lora_alpha": 32, "target_modules": ["c_attn"],
                                                   "use_rslora": True}))
    from_file = lora_config(TrainConfig(lora_config=str(tmp_path / "lora.json"), lora_alpha=16))
    assert (from_file.r, from_file.lora_alpha, from_file.use_rslora) == (4, 16, True)  # a field overrides the file
    tr = Trainer(_cfg(gpt2, tmp_path / "run", lora_config=str(tmp_path / "lora.json")), ROWS)
    trainable = [n for n, p in tr.unwrapped.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and "c_attn" in n for n in trainable)
    tr2 = Trainer(_cfg(gpt2, tmp_path / "run2"), ROWS, peft_config=LoraConfig(r=2, target_modules=["c_proj"]))
    assert {n.split(".")[-2] for n, p in tr2.unwrapped.named_parameters() if p.requires_grad} >= {"default"}
    assert all("c_proj" in n for n, p in tr2.unwrapped.named_parameters() if p.requires_grad)


# ---------------------------------------------------------------------------------------------- progress bars


def test_evaluation_shows_a_bar_and_hf_load_save_bars_are_silent(gpt2, tmp_path, capfd):
    from tsallis.llm.evaluate import evaluate
    from tsallis.llm.example import Example
    from tsallis.llm.loading import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(gpt2, TrainConfig())
    assert "Loading weights" not in capfd.readouterr().err
    examples = [Example(id=str(i), prompt=r["prompt"], answer=r["answer"]) for i, r in enumerate(ROWS)]
    evaluate(model, tok, examples, k=2, max_rationale_tokens=3, max_answer_tokens=2, delimiter=">", progress=True)
    assert "eval k=2" in capfd.readouterr().err
    evaluate(model, tok, examples, k=2, max_rationale_tokens=3, max_answer_tokens=2, delimiter=">")
    assert "eval k=2" not in capfd.readouterr().err
    Trainer(_cfg(gpt2, tmp_path, progress_bar=True, eval_every=1, save_every=1, max_steps=2), ROWS, ROWS).train()
    err = capfd.readouterr().err
    assert "eval" in err and "garl q=0.75" in err  # the in-training evaluation's bar and the training bar
    assert "Writing model shards" not in err and "Loading weights" not in err


def test_eval_cli_on_conversational_rows(qwen, tmp_path, capsys):
    """`tsallis llm eval` on a chat JSONL file: rendered by the chat template, k samples per row, a bar."""
    from tsallis.cli import main

    rows = tmp_path / "chat.jsonl"
    rows.write_text("\n".join(json.dumps(r) for r in CHAT) + "\n")
    out = tmp_path / "e.json"
    assert main(["llm", "eval", qwen, "--task", f"jsonl:{rows}", "--delimiter", "</think>", "--k", "2",
                 "--max-rationale-tokens", "3", "--max-answer-tokens", "2", "--scorer", "em", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["scorer"] == "em" and len(res["records"]) == len(CHAT) and res["k"] == 2
    assert "eval k=2" in capsys.readouterr().err

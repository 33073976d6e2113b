"""Free-form GRPO (`TrainConfig.completion_format` "free", issue 20): completions sampled as TRL's GRPO samples them,
up to a length limit or a stop token, nothing forced and no answer split off, rewarded by the reward functions
alone; rows need no `answer`. GARL/PAFT/SFT keep the split and refuse free completions at the door.

Tiny random-init GPT-2 (the toy's character tokenizer), a few steps at most.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")

from tsallis.cli import main  # noqa: E402
from tsallis.errors import InputError  # noqa: E402
from tsallis.llm.config import TrainConfig  # noqa: E402
from tsallis.llm.data import examples_from_rows  # noqa: E402
from tsallis.llm.decode import decode_rollout  # noqa: E402
from tsallis.llm.estimators import GRPO  # noqa: E402
from tsallis.llm.loading import load_model_and_tokenizer  # noqa: E402
from tsallis.llm.policy import Policy  # noqa: E402
from tsallis.llm.rollout import Rollout, generate_rollout, prompt_seeds  # noqa: E402
from tsallis.llm.step import MicroBatch, StepBatch, completion_metrics  # noqa: E402
from tsallis.llm.trainer import Trainer  # noqa: E402

from .helpers import flat_params  # noqa: E402

pytestmark = [pytest.mark.usefixtures("one_thread"),  # GRPOConfig's own default (gradient_checkpointing=True) warns:
              pytest.mark.filterwarnings("ignore:`gradient_checkpointing` is deprecated:FutureWarning")]

PROMPTS = [f"R{i}{i};a{i}:" for i in range(4)]
TINY = dict(method="grpo", max_steps=2, num_generations=3, prompts_per_step=2, max_rationale_tokens=5,
            max_answer_tokens=3, learning_rate=1e-2, progress_bar=False, save_every=0, delimiter=">")
REWARD_FILE = '''
def length(completions, **kwargs):
    return [float(len(c)) for c in completions]
'''


def _policy(model_path, **kw) -> Policy:
    model, tok = load_model_and_tokenizer(model_path, TrainConfig(model=model_path), on_cuda=False)
    return Policy.build(model, tok, delimiter=">", max_rationale_tokens=5, max_answer_tokens=3, **kw)


# ---------------------------------------------------------------------------------------------- the engine


def test_free_completions_run_to_a_stop_token_or_the_limit_with_nothing_forced(model_path):
    free, split = _policy(model_path, free_form=True), _policy(model_path)
    assert free.free_form and not split.free_form and free.max_answer_tokens == 5 + 3
    seeds = prompt_seeds(0, 0, len(PROMPTS))
    ro = free.sample(PROMPTS, 4, seeds)
    assert all(z == [] for z in ro.rationale_ids) and not any(ro.forced)
    stops = set(free.stop_ids)
    for a, text in zip(ro.answer_ids, ro.texts):  # ended with a stop token, or exactly at the limit
        assert (a and a[-1] in stops and len(a) <= 8) or (len(a) == 8 and not stops & set(a))
        # the whole completion, nothing split off, special tokens dropped as TRL decodes it
        assert text == free.tokenizer.decode(a, skip_special_tokens=True)
    # the split policy forces its delimiter where the free one runs on: some split text holds a forced '>'
    split_ro = split.sample(PROMPTS, 4, seeds)
    assert any(split_ro.forced) and all(">" in t for t, f in zip(split_ro.texts, split_ro.forced) if f)
    with pytest.raises(ValueError, match="sample_answers must be True"):  # no rationale to stop after
        free.sample(PROMPTS, 1, seeds, sample_answers=False)
    assert split.sample(PROMPTS, 1, seeds, sample_answers=False).answer_ids is None
    # the one engine: the decode loop and generate draw the same free tokens
    ids = [free.encode_prompt(p) for p in PROMPTS]
    kw = dict(num_samples=4, prompt_seeds=seeds, delimiter_ids=[], stop_ids=free.stop_ids, pad_id=free.pad_id,
              max_rationale_tokens=0, max_answer_tokens=8)
    assert decode_rollout(free.model, ids, **kw).answer_ids == generate_rollout(free.model, ids, **kw).answer_ids \
        == ro.answer_ids


def test_a_free_completion_reads_as_trl_decodes_it_special_tokens_dropped(model_path):
    """TRL's GRPO gives reward functions `batch_decode(completion_ids, skip_special_tokens=True)`; the split format
    keeps special tokens inside the completion (a delimiter may be one) and drops only a final stop token."""
    free, split = _policy(model_path, free_form=True), _policy(model_path)
    tok = free.tokenizer
    ids = free.encode("ab") + [tok.pad_token_id] + free.encode("c") + [tok.eos_token_id]
    assert free.completion_text([], ids) == tok.decode(ids, skip_special_tokens=True) == "abc"
    kept = split.completion_text([], ids)
    assert tok.pad_token in kept and tok.eos_token not in kept and kept != "abc"


def test_a_clipped_completion_counts_in_clipped_ratio_and_mask_truncated_drops_it(model_path):
    policy = _policy(model_path, free_form=True)
    eos, tok = policy.stop_ids[0], policy.encode("ab")
    ro = Rollout([policy.encode_prompt("x:")], [[], []], [False, False], [tok + [eos], tok * 4])  # ended, clipped
    ro.texts = ["ab", "abababab"]
    batch = policy.batch(["x:"], ro, "sampled")
    assert batch.ended.tolist() == [True, False]
    assert batch.answer_mask.sum(-1).tolist() == [3, 8] and not batch.rationale_mask.any()  # all completion tokens
    kept = GRPO(group_size=2, mask_truncated=True)._mask(batch).sum(-1).tolist()
    assert kept == [3.0, 0.0] and GRPO(group_size=2)._mask(batch).sum(-1).tolist() == [3.0, 8.0]
    step = StepBatch(0.0, [MicroBatch([], [], ro, None, {}, batch)])
    m = completion_metrics(step, gather=lambda t: t, stop_ids=policy.stop_ids, delimiter_len=0)
    assert m["completions/clipped_ratio"] == 0.5 and m["completions/mean_terminated_length"] == 3
    assert "rationale/forced_ratio" not in m  # free completions have no rationale


# -------------------------------------------------------------------------------------------- training


def test_grpo_trains_on_free_completions_of_a_prompt_only_dataset_as_trl(model_path, tmp_path):
    """TRL's GRPOTrainer call on a dataset with only a `prompt` column and a custom reward: free completions."""
    seen: list[tuple[str, list[int]]] = []

    def length(completions, completion_ids, **kwargs):
        seen.extend(zip(completions, completion_ids))
        return [float(len(c)) for c in completions]

    tr = Trainer(model=model_path, args=TrainConfig(**TINY, eval_every=2, output_dir=str(tmp_path)),
                 train_dataset=datasets.Dataset.from_dict({"prompt": PROMPTS}), reward_funcs=length,
                 eval_dataset=[{"prompt": p} for p in PROMPTS[:2]])
    assert tr.cfg.completion_format == "free" and tr.policy.free_form
    before = flat_params(tr).clone()
    result = tr.train()
    history = result.history
    assert not torch.equal(before, flat_params(tr))
    # the evaluation hook scores free completions with the run's reward functions; eval/reward picks the best
    assert "eval/reward" in history[1] and "eval/p@1" not in history[1]
    assert result.best_checkpoint is not None and tr.state.best_metric == history[1]["eval/reward"]
    seen.clear()
    assert json.loads((tmp_path / "run_config.json").read_text())["completion_format"] == "free"
    first = tr.step()  # one more step, its completions recorded alone
    assert first["rewards/length/mean"] == pytest.approx(sum(len(c) for c, _ in seen) / 6)
    assert 0.0 <= first["completions/clipped_ratio"] <= 1.0 and "accuracy" not in first
    assert "rationale/forced_ratio" not in first
    # the reward functions see the decoded completion, and its ids are the completion's tokens only
    stops = set(tr.policy.stop_ids)
    assert all(c == tr.tokenizer.decode(ids, skip_special_tokens=True) for c, ids in seen)  # as TRL decodes
    assert any(set(ids) & stops for _, ids in seen)  # a sampled stop token is in the ids, not in the text
    assert first["completions/max_length"] <= 8


def test_free_grpo_learns_what_the_reward_asks_brevity(model_path, tmp_path):
    """The reward alone shapes free completions: rewarded for brevity, the model learns to end them early (stop
    token), and the clipped ratio falls. Deterministic on CPU (row-keyed sampling, seed 0): reward (minus the
    completion's tokens) -9.3 -> -1.2, clipped ratio 0.83 -> 0 over the first and last three of 12 steps."""
    def brevity(completion_ids, **kwargs):  # by tokens: the text drops special tokens (TRL's decode), which a
        return [-float(len(ids)) for ids in completion_ids]  # length-in-characters reward would let it emit free

    cfg = TrainConfig(**{**TINY, "max_steps": 12, "num_generations": 4, "max_rationale_tokens": 6,
                         "max_answer_tokens": 4, "learning_rate": 1e-1}, model=model_path, output_dir=str(tmp_path))
    rows = [{"prompt": f"R{i}{i};a{i}:"} for i in range(8)]
    history = Trainer(cfg, rows, reward_funcs=brevity).train().history
    first, last = history[:3], history[-3:]
    mean = lambda rows, key: sum(m[key] for m in rows) / len(rows)  # noqa: E731
    assert mean(last, "reward") > mean(first, "reward") + 5
    assert mean(last, "completions/clipped_ratio") < mean(first, "completions/clipped_ratio")


def test_a_grpo_config_on_conversational_prompt_only_rows_trains_free_and_resumes(model_path, tmp_path):
    """TRL's own objects: a GRPOConfig's max_completion_length is the free completion's budget; a conversational
    prompt's completion reaches the reward as [{"role": "assistant", "content": text}], as TRL passes it; the run
    resumes with the same (free) format."""
    trl = pytest.importorskip("trl")
    seen = []

    def brief(completions, **kwargs):
        seen.extend(completions)
        return [-float(len(c[0]["content"])) for c in completions]

    args = dict(output_dir=str(tmp_path), use_cpu=True, bf16=False, max_steps=1, num_generations=3,
                per_device_train_batch_size=3, max_completion_length=6, learning_rate=1e-2, report_to="none",
                disable_tqdm=True, save_strategy="no", gradient_checkpointing=False)
    rows = [{"prompt": [{"role": "user", "content": p}]} for p in PROMPTS]
    tok = _chat_tokenizer(model_path)
    tr = Trainer(model=model_path, args=trl.GRPOConfig(**args), train_dataset=rows, reward_funcs=brief,
                 processing_class=tok)
    assert tr.cfg.completion_format == "free" and tr.policy.max_answer_tokens == 6
    tr.train()
    assert seen and all(isinstance(c, list) and c[0]["role"] == "assistant" for c in seen)
    again = Trainer(model=model_path, args=trl.GRPOConfig(**{**args, "max_steps": 2}), train_dataset=rows,
                    reward_funcs=brief, processing_class=tok, resume_from=tmp_path)
    assert again.state.step == 1 and again.train().step == 2


def _chat_tokenizer(model_path):
    """The tiny model's tokenizer with a minimal chat template (conversational prompts need one)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
    tok.chat_template = ("{% for m in messages %}{{ m['content'] }}{% endfor %}"
                         "{% if add_generation_prompt %}:{% endif %}")
    return tok


def test_the_split_format_and_the_methods_that_need_it_refuse_rows_without_an_answer(model_path, tmp_path):
    rows = [{"prompt": p} for p in PROMPTS]
    with pytest.raises(InputError, match=r"train_examples, row 0: missing field 'answer'.*completion_format='free'"):
        Trainer(TrainConfig(**TINY, completion_format="split", output_dir=str(tmp_path)), rows,
                reward_funcs=lambda completions, **kw: [0.0] * len(completions))
    with pytest.raises(InputError, match=r"row 0: no 'answer'.*method='garl'.*method='grpo'"):
        Trainer(TrainConfig(**{**TINY, "method": "garl"}, output_dir=str(tmp_path)), rows)
    with pytest.raises(InputError, match=r"'exact_answer' needs the column\(s\) \['answer'\].*reward_funcs"):
        Trainer(TrainConfig(**TINY, output_dir=str(tmp_path)), rows)  # the default reward checks a gold answer
    # rows with answers keep the split format (today's behaviour), also through TRL's constructor
    with_answers = [{"prompt": p, "answer": "1"} for p in PROMPTS]
    assert Trainer(model=model_path, args=TrainConfig(**TINY, output_dir=str(tmp_path)),
                   train_dataset=with_answers).cfg.completion_format is None


def test_integer_answers_become_text_and_other_types_are_refused_by_column_and_row():
    exs = examples_from_rows([{"prompt": "a", "answer": 42}, {"prompt": "b", "answer": "0.5"}])
    assert [ex.answer for ex in exs] == ["42", "0.5"]
    for bad in ([1, 2], True, 3.0, " "):
        with pytest.raises(InputError, match=r"rows, row 1: field 'answer' should be a non-blank string"):
            examples_from_rows([{"prompt": "a", "answer": "1"}, {"prompt": "b", "answer": bad}])
    with pytest.raises(InputError, match=r"3.0 or 3: write the answer as a string"):
        examples_from_rows([{"prompt": "a", "answer": 3.0}])
    free = examples_from_rows([{"prompt": "a"}, {"prompt": "b", "answer": None}], answers=False)
    assert [ex.answer for ex in free] == [None, None]


def test_examples_without_answers_are_refused_where_the_split_needs_them_and_kept_for_free_evaluation():
    """The answer check of row dicts holds for a list of Examples too (`data.as_examples`), and an evaluation hook
    takes answerless examples (its policy's format decides: `evaluate_policy`)."""
    from tsallis.llm.data import as_examples
    from tsallis.llm.evaluate import make_evaluate_fn

    free = examples_from_rows([{"prompt": "a"}, {"prompt": "b"}], answers=False)
    assert as_examples(free, "rows", answers=False) == free
    with pytest.raises(InputError, match=r"rows, example 0: no answer: give every row an 'answer'"):
        as_examples(free, "rows")
    assert callable(make_evaluate_fn([{"prompt": "a"}], k=1))


def test_free_completions_with_garl_paft_or_sft_are_refused_at_the_door(tmp_path, capsys):
    for method in ("garl", "paft", "sft"):
        with pytest.raises(InputError, match=f"completion_format='free'.*method='{method}'.*use method='grpo'"):
            TrainConfig(method=method, completion_format="free")
    assert TrainConfig(method="grpo", completion_format="free").free_form
    assert main(["llm", "train", "--method", "garl", "--completion-format", "free", "--output-dir",
                 str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "completion_format='free'" in err and "Traceback" not in err


# ------------------------------------------------------------------------------------------------- CLI


def test_the_cli_trains_free_grpo_with_a_reward_file_and_eval_scores_it_by_reward(model_path, tmp_path, capsys):
    reward = tmp_path / "reward.py"
    reward.write_text(REWARD_FILE)
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    out = tmp_path / "run"
    flags = ["--model", model_path, "--task", f"jsonl:{rows}", "--eval-task", f"jsonl:{rows}", "--method", "grpo",
             "--max-steps", "1", "--num-generations", "2", "--prompts-per-step", "2", "--max-rationale-tokens", "4",
             "--max-answer-tokens", "2", "--save-every", "0", "--progress-bar", "false", "--output-dir", str(out),
             "--reward-funcs", f"{reward}:length"]
    assert main(["llm", "train", *flags, "--delimiter", ">"]) == 2  # split (the default): the rows have no answer
    assert "missing field 'answer'" in capsys.readouterr().err
    assert main(["llm", "train", *flags, "--completion-format", "free"]) == 0  # no delimiter to tokenize
    final = json.loads(capsys.readouterr().out)["final"]
    assert "rewards/length/mean" in final and "completions/clipped_ratio" in final
    assert main(["llm", "eval", str(out), "--k", "2", "--max-examples", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads(Path(printed["output"]).read_text())
    lengths = [len(c) for r in saved["records"] for c in r["completions"]]
    assert printed["scorer"] == "length" and printed["metrics"]["reward"] == pytest.approx(sum(lengths) / 4)
    assert all(len(r["rewards"]) == 2 for r in saved["records"]) and 0 <= printed["metrics"]["clipped_ratio"] <= 1
    assert main(["llm", "eval", str(out), "--k", "2", "--scorer", "em"]) == 2  # no answer to check
    assert "--scorer" in capsys.readouterr().err

#!/usr/bin/env bash
# One-shot GPU session (one H100, ~8 minutes wall clock, machine start excluded). Usage:
#
#     OUT=/path/to/out bash benchmarks/gpu_session.sh          # GPU
#     GPU_SESSION_TINY=1 OUT=/tmp/o bash benchmarks/gpu_session.sh   # CPU smoke mode, < 3 minutes on 2 cores
#
# (a) benchmarks/bench_llm_gpu.py (~110M-param bf16 model: step time, tokens/s, peak memory for grpo/garl/paft),
#     bounded by `timeout`; (b) benchmarks/gpu_cold_start.py: `tsallis llm study all --size full` (the CPU
#     studies, same code) with GPU_SESSION_WORKERS parallel processes, bounded by the time left.
# Files in $OUT: gpu_session.log, gpu_bench.json, study/ (testbed.json, escape*.{json,csv,png}, label_noise.*,
# verdicts.json, runs.log).
set -u
export OUT="${OUT:-runs/gpu_session}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export GPU_SESSION_T0="$(date +%s)"
TINY="${GPU_SESSION_TINY:-0}"
if [ "$TINY" = "1" ]; then BENCH_TIMEOUT=60; BENCH_ARGS="--tiny"; TOTAL=175; export GPU_SESSION_SIZE=quick; else BENCH_TIMEOUT=150; BENCH_ARGS=""; TOTAL=480; fi
# a shorter session when less device time is left: GPU_SESSION_BUDGET (s, whole script), GPU_SESSION_BENCH_TIMEOUT,
# GPU_SESSION_BENCH_STEPS (timed steps per method); the driver scales its phases to the budget
TOTAL="${GPU_SESSION_BUDGET:-$TOTAL}"
BENCH_TIMEOUT="${GPU_SESSION_BENCH_TIMEOUT:-$BENCH_TIMEOUT}"
[ -n "${GPU_SESSION_BENCH_STEPS:-}" ] && BENCH_ARGS="$BENCH_ARGS --steps $GPU_SESSION_BENCH_STEPS"
cd "$(dirname "$0")/.."
exec > >(tee -a "$OUT/gpu_session.log") 2>&1
echo "=== gpu_session start $(date -u +%FT%TZ) tiny=$TINY host=$(hostname) nproc=$(nproc)"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
python -c "import sys, torch, transformers, accelerate; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), 'transformers', transformers.__version__, 'accelerate', accelerate.__version__)"

echo "=== (a) bench_llm_gpu.py (timeout ${BENCH_TIMEOUT}s) $(date -u +%T)"
timeout -k 5 "$BENCH_TIMEOUT" python benchmarks/bench_llm_gpu.py $BENCH_ARGS --json "$OUT/gpu_bench.json"
echo "bench exit code $? after $(( $(date +%s) - GPU_SESSION_T0 ))s"

echo "=== (b) gpu_cold_start.py $(date -u +%T)"
LEFT=$(( GPU_SESSION_T0 + TOTAL - $(date +%s) ))
[ "$LEFT" -lt 30 ] && LEFT=30
timeout -k 10 "$LEFT" python benchmarks/gpu_cold_start.py
echo "driver exit code $? after $(( $(date +%s) - GPU_SESSION_T0 ))s"
ls -la "$OUT"
echo "=== gpu_session end $(date -u +%FT%TZ) total $(( $(date +%s) - GPU_SESSION_T0 ))s"

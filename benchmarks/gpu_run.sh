#!/bin/bash
# What was run on the lent GPU (device tool), in one call. Needs: the repo, the MNIST and
# Fashion-MNIST IDX files under $DATA (default .gpudata/), and ml_collections + tensorboardX
# importable. Writes everything under $OUT (default runs/gpu_out).
#   1. benchmarks/throughput.py --platform gpu: DCGAN and MLP at batch 256 and 1024, f32 and bf16,
#      alone on the GPU (before any training starts).
#   2. Seed variance (issue #5): experiments/mnist.py and experiments/fashion.py, 3 seeds each,
#      plus MNIST variants share_g_forward, compute_dtype=bfloat16 and model.matmul_dtype=bfloat16
#      (issue #6 quality checks; NAMES picks which),
#      all 12 runs side by side on the one GPU, then `gan_jax.seeds --collect` for each.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_out}; DATA=${DATA:-$PWD/.gpudata}; STEPS=${STEPS:-3000}
BENCH_STEPS=${BENCH_STEPS:-1000}; SEED_EXTRA=${SEED_EXTRA:-}
mkdir -p "$OUT"
export GAN_JAX_DATA_DIR=$DATA PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import jax; print(jax.__version__, jax.devices())" >> "$OUT/gpu.txt" 2>&1
T0=$(date +%s)
# --- 1: the benchmark, alone on the GPU ---
B="timeout 75 python3 benchmarks/throughput.py --platform gpu --no-peer --repeats 3 --steps $BENCH_STEPS --data-dir $DATA/mnist"
[ -n "${SKIP_BENCH:-}" ] || { $B --batch-sizes 256,1024
  $B --batch-sizes 256,1024 --set compute_dtype=bfloat16
  $B --mlp --batch-sizes 256,1024
  $B --mlp --batch-sizes 256,1024 --set compute_dtype=bfloat16
} > "$OUT/bench.txt" 2>&1
echo "bench done at $(( $(date +%s) - T0 )) s" >> "$OUT/gpu.txt"
# --- 2: the training runs, side by side on the GPU ---
R=runs/gpu_seeds
run_seeds() {  # name config extra-flags...
  local name=$1 cfg=$2; shift 2
  for i in 0 1 2; do
    timeout ${TRAIN_LIMIT:-300} python3 -m gan_jax.seeds --config="$cfg" --seeds=3 --only=$i --root=$R/$name \
      --config.num_steps=$STEPS $SEED_EXTRA "$@" > "$OUT/log_${name}_$i.txt" 2>&1 &
  done
}
NAMES=${NAMES:-mnist fashion mnist_shared mnist_bf16}
for name in $NAMES; do
  case $name in
    mnist) run_seeds mnist experiments/mnist.py ;;
    fashion) run_seeds fashion experiments/fashion.py ;;
    mnist_shared) run_seeds mnist_shared experiments/mnist.py --config.share_g_forward=True ;;
    mnist_bf16) run_seeds mnist_bf16 experiments/mnist.py --config.compute_dtype=bfloat16 ;;
    mnist_mm16) run_seeds mnist_mm16 experiments/mnist.py --config.model.matmul_dtype=bfloat16 ;;
  esac
done
wait
echo "training done at $(( $(date +%s) - T0 )) s" >> "$OUT/gpu.txt"
for name in $NAMES; do
  cfg=experiments/mnist.py; [ $name = fashion ] && cfg=experiments/fashion.py
  timeout 120 python3 -m gan_jax.seeds --config=$cfg --seeds=3 --collect --root=$R/$name \
    --config.num_steps=$STEPS $SEED_EXTRA > "$OUT/collect_$name.txt" 2>&1 &
done
wait
echo "collect done at $(( $(date +%s) - T0 )) s" >> "$OUT/gpu.txt"
# Small artefacts only: tables, logs, metrics.jsonl and the eval-step grids.
tar czf "$OUT/runs.tgz" --exclude='checkpoints*' --exclude='events.out*' $R 2>/dev/null
# One whole run (final checkpoint) to draw pictures from, in parts under the 16 MiB file limit.
tar cf - --exclude='checkpoints_best' --exclude='tb' $R/mnist/seed0 | split -b 15m - "$OUT/mnist_seed0.tar.part"
tar czf "$OUT/logs.tgz" "$OUT"/log_* "$OUT"/collect_* 2>/dev/null
rm -f "$OUT"/log_* "$OUT"/collect_*
ls -la "$OUT"

#!/bin/bash
# The lent-GPU benchmark of issue #6 in one call (device tool): benchmarks/throughput.py
# --platform gpu for the DCGAN (f32 and bf16 compute, each with model.kernels=xla_cpu, our
# kernels, and kernels=flax, XLA/cuDNN's own layers) and the MLP GAN (its defaults, and
# compute_dtype=bfloat16), batch 256 and 1024, alone on the GPU. Needs the repo, the MNIST IDX
# files under $DATA (default .gpudata/), ml_collections importable. Writes $OUT/bench.txt.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_bench}; DATA=${DATA:-$PWD/.gpudata}; STEPS=${STEPS:-1000}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} GAN_JAX_COMMIT=${GAN_JAX_COMMIT:-unknown}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import jax, flax, optax; print(jax.__version__, flax.__version__, optax.__version__, jax.devices())"
} > "$OUT/gpu.txt" 2>&1
B="timeout ${LIMIT:-90} python3 benchmarks/throughput.py --platform gpu --no-peer --repeats 3 --steps $STEPS --data-dir $DATA/mnist --batch-sizes 256,1024"
T0=$(date +%s)
{
  $B --kernels xla_cpu,flax
  $B --set compute_dtype=bfloat16 --kernels xla_cpu,flax
  $B --mlp
  $B --mlp --set compute_dtype=bfloat16
} 2>&1 | tee "$OUT/bench.txt"
echo "bench done in $(( $(date +%s) - T0 )) s" | tee -a "$OUT/gpu.txt"
grep '^JSON ' "$OUT/bench.txt" | sed 's/^JSON //' > "$OUT/gpu_bench.jsonl"

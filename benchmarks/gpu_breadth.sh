#!/bin/bash
# The second lent-GPU call (issue #9): conditional DCGANs, the concat-cGAN baseline and SNGAN on
# MNIST / Fashion-MNIST, all side by side on the one GPU, then the seed tables and the pictures.
# Needs the repo, the IDX files under $DATA (default .gpudata/), and ml_collections + tensorboardX
# importable. Writes under $OUT (default runs/gpu_out2): tables.tgz (seed tables, logs,
# metrics.jsonl, eval grids) and pictures.tgz.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_out2}; DATA=${DATA:-$PWD/.gpudata}; STEPS=${STEPS:-3000}
LIMIT=${LIMIT:-210}
mkdir -p "$OUT"
export GAN_JAX_DATA_DIR=$DATA PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
T0=$(date +%s)
R=runs/gpu_breadth
# name config seeds [overrides...]
JOBS=("mnist_cond experiments/mnist_cond.py 3"
      "fashion_cond experiments/fashion_cond.py 3"
      "mnist_concat experiments/mnist_cond.py:concat 1"
      "mnist_concat_proj experiments/mnist_cond.py:concat_proj 1"
      "mnist_sngan experiments/mnist_sngan.py 3")
for job in "${JOBS[@]}"; do
  set -- $job; name=$1 cfg=$2 n=$3
  for i in $(seq 0 $((n - 1))); do
    timeout "$LIMIT" python3 -m gan_jax.seeds --config="$cfg" --seeds="$n" --only="$i" \
      --root="$R/$name" --config.num_steps="$STEPS" > "$OUT/log_${name}_$i.txt" 2>&1 &
  done
done
wait
echo "training done at $(( $(date +%s) - T0 )) s" >> "$OUT/times.txt"
for job in "${JOBS[@]}"; do
  set -- $job; name=$1 cfg=$2 n=$3
  timeout 100 python3 -m gan_jax.seeds --config="$cfg" --seeds="$n" --collect --root="$R/$name" \
    --config.num_steps="$STEPS" > "$OUT/collect_${name}.txt" 2>&1 &
done
P=$OUT/pictures; mkdir -p "$P"
S="timeout 100 python3 -m gan_jax.sample"
$S --workdir=$R/mnist_cond/seed0 --mode=classes --cols=10 --grid=$P/mnist_cond_classes.png > $OUT/pic1.txt 2>&1 &
$S --workdir=$R/fashion_cond/seed0 --mode=classes --cols=10 --grid=$P/fashion_cond_classes.png > $OUT/pic2.txt 2>&1 &
$S --workdir=$R/mnist_concat/seed0 --mode=classes --cols=10 --grid=$P/mnist_concat_classes.png > $OUT/pic3.txt 2>&1 &
$S --workdir=$R/mnist_cond/seed0 --mode=interpolate --rows=6 --grid=$P/mnist_cond_interpolate.png > $OUT/pic4.txt 2>&1 &
$S --workdir=$R/mnist_cond/seed0 --mode=progress --grid=$P/mnist_cond_progress.png > $OUT/pic5.txt 2>&1 &
$S --workdir=$R/mnist_concat_proj/seed0 --mode=classes --cols=10 --grid=$P/mnist_concat_proj_classes.png > $OUT/pic8.txt 2>&1 &
$S --workdir=$R/mnist_sngan/seed0 --num=64 --grid=$P/mnist_sngan_samples.png > $OUT/pic6.txt 2>&1 &
$S --workdir=$R/fashion_cond/seed0 --mode=nearest --rows=6 --grid=$P/fashion_cond_nearest.png > $OUT/pic7.txt 2>&1 &
wait
echo "collect and pictures done at $(( $(date +%s) - T0 )) s" >> "$OUT/times.txt"
cp $R/*/seeds.md "$P/" 2>/dev/null
tar czf "$OUT/pictures.tgz" -C "$OUT" pictures
tar czf "$OUT/tables.tgz" --exclude='checkpoints*' --exclude='events.out*' $R "$OUT"/log_* \
  "$OUT"/collect_* "$OUT"/pic*.txt 2>/dev/null
rm -rf "$OUT"/log_* "$OUT"/collect_* "$OUT"/pic*.txt "$P"
ls -la "$OUT"; cat "$OUT/times.txt"

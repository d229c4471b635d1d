#!/bin/bash
# Cloud TPU VM pod slice (e.g. v4-32: 4 hosts x 4 chips). Run from your workstation.
#
#   TPU_NAME=my-v4-32 ZONE=us-central2-b WORKDIR=/mnt/shared/runs/mnist bash experiments/cluster/tpu_pod.sh
#
# Every worker runs the same launch.py; on a TPU VM jax.distributed.initialize() finds the other
# workers itself (launch.py starts it because TPU_WORKER_HOSTNAMES lists more than one host;
# pass --distributed=on if your image does not set that variable). WORKDIR must be a POSIX path
# mounted on every worker (Filestore NFS or a gcsfuse mount): gan_jax writes metrics and
# pictures with ordinary file I/O.
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}" "${WORKDIR:?set WORKDIR}"
REPO_URL=${REPO_URL:-https://github.com/your-org/gan_jax.git}

gcloud compute tpus tpu-vm ssh "${TPU_NAME}" --zone="${ZONE}" --worker=all --command="
  set -e
  [ -d gan_jax ] || git clone ${REPO_URL} gan_jax
  cd gan_jax && pip install -q -U 'jax[tpu]' && pip install -q -e .
  python launch.py --config=experiments/mnist.py --workdir=${WORKDIR} --config.batch_size=2048
"

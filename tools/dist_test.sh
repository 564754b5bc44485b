#!/usr/bin/env bash
# Evaluate a checkpoint on GPUS GPUs of this node, or of every node with NNODES/NODE_RANK/MASTER_ADDR set:
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
# Each process evaluates its share of the test images; the metric is computed once on all of them.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python}

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$here/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"

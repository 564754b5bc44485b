#!/usr/bin/env bash
# Train on GPUS GPUs of this node, or of every node with NNODES/NODE_RANK/MASTER_ADDR set:
#   tools/dist_train.sh CONFIG GPUS [train.py options]
# PyTorch DDP through torchrun; MMEngine's Runner handles the distributed setup.
set -euo pipefail
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python}

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$here/train.py" "$CONFIG" --launcher pytorch "${@:3}"

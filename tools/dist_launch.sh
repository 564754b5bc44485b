#!/usr/bin/env bash
# Start tools/TOOL in PROCS processes on this node through torchrun, with TOOL's arguments:
#   tools/dist_launch.sh PROCS TOOL [arguments]     (what dist_train.sh and dist_test.sh run)
# NNODES, NODE_RANK, MASTER_ADDR and PORT set a multi-node run; PYTHON, the interpreter.
set -euo pipefail
PROCS=$1
TOOL=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python}

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$PROCS" --master_port="$PORT" \
    "$here/$TOOL" "${@:3}"

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

die() { printf 'error: %s\n' "$*" >&2; exit 2; }
whole() { [[ $1 =~ ^[0-9]+$ ]]; }
# Checked here, before torchrun starts: a swapped CONFIG and GPUS, or a node rank that no
# rendezvous can place, otherwise ends in torchrun's own failure report, or waits.
whole "$PROCS" && ((PROCS >= 1)) ||
    die "GPUS '$PROCS' is not a number of processes: expected a whole number, 1 or more"
whole "$NNODES" && ((NNODES >= 1)) || die "NNODES=$NNODES: expected a whole number, 1 or more"
whole "$NODE_RANK" && ((NODE_RANK < NNODES)) ||
    die "NODE_RANK=$NODE_RANK: expected 0 to $((NNODES - 1)) (NNODES=$NNODES)"
whole "$PORT" && ((PORT >= 1 && PORT <= 65535)) || die "PORT=$PORT: expected 1 to 65535"

exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$PROCS" --master_port="$PORT" \
    "$here/$TOOL" "${@:3}"

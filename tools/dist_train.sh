#!/usr/bin/env bash
# Train on GPUS GPUs of this node, or of every node with NNODES/NODE_RANK/MASTER_ADDR set:
#   tools/dist_train.sh CONFIG GPUS [train.py options]
# PyTorch DDP through torchrun; MMEngine's Runner handles the distributed setup.
set -euo pipefail
if (($# < 2)); then
    printf 'usage: %s\nerror: missing arguments: expected %s\n' \
        'tools/dist_train.sh CONFIG GPUS [train.py options]' \
        'a config and the number of processes (GPUS)' >&2
    exit 2
fi
exec "$(dirname "${BASH_SOURCE[0]}")/dist_launch.sh" "$2" train.py "$1" --launcher pytorch "${@:3}"

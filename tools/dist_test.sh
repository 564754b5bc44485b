#!/usr/bin/env bash
# Evaluate a checkpoint on GPUS GPUs of this node, or of every node with NNODES/NODE_RANK/MASTER_ADDR set:
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
# Each process evaluates its share of the test images; the metric is computed once on all of them.
set -euo pipefail
if (($# < 3)); then
    printf 'usage: %s\nerror: missing arguments: expected %s\n' \
        'tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]' \
        'a config, a checkpoint and the number of processes (GPUS)' >&2
    exit 2
fi
exec "$(dirname "${BASH_SOURCE[0]}")/dist_launch.sh" "$3" test.py "$1" "$2" --launcher pytorch "${@:4}"

#!/usr/bin/env bash
# The GPU checks in one go: the tests marked ``gpu``, then the speed benchmarks
# on the GPU. Each step has a time limit and its own log; a failing step is
# reported and the next one still runs.
#
# Run: bash benchmarks/run_gpu.sh [OUTPUT_FOLDER] (default gpu-results); the
# variables DEVICE (default cuda) and PYTHON (default python3) change the rest.
set -uo pipefail
out=${1:-gpu-results}
device=${DEVICE:-cuda}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
status=0

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "=== $name"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.txt"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc after $((SECONDS - start)) s"
    [ "$rc" -eq 0 ] || status=1
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
step tests 200 "$python" -m pytest -m gpu -q -p no:cacheprovider -rs tests
step training 150 "$python" benchmarks/bench_training.py --device "$device" \
    --epochs 20 --rounds 1
step inference 60 "$python" benchmarks/bench_inference.py --device "$device"
step scaling 90 "$python" benchmarks/bench_scaling.py --device "$device" --quick
exit $status

#!/usr/bin/env bash
# The GPU part of gradelab's checks and benchmarks, in one script, for a machine with a CUDA device
# (none of the machines the project is built on has one). From the repository root:
#
#     bench/gpu.sh            # after `make venv`; or PYTHON=python3 bench/gpu.sh with the deps installed
#
# 1. what the machine is;  2. the tests marked `gpu` (a training check through the sandbox on CUDA);
# 3. `gradelab calibrate` of the gpu budgets (cifar-training; vgg-batchnorm with three seeds), which
# rewrites the labs' calibration.yaml: commit them;  4. seconds per hand-in on the gpu budget
# (bench/gpu-times.json, read by `python -m bench.scale` for its 500-student projection), after
# the correct hand-ins' seconds to a verdict with and without early stopping (bench.verdicts);
# 5. the training benchmarks' GPU tables. Copies of what it wrote go to $OUT when that is set.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
failed=0
step() { echo; echo "== $*"; }
run() { "$@" || { echo "!! failed ($?): $*"; failed=1; }; }

step "the machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
run "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"

step "tests marked gpu"
run "$PY" -m pytest -q -p no:cacheprovider -m gpu $(grep -l 'mark.gpu' tests/test_*.py)

step "calibrate cifar-training, gpu budget"
S=submissions/cifar-training
run "$PY" -m grader calibrate cifar-training --budget gpu --device cuda --against $S/no-nonlinearity \
    --against $S/dropout-always-on --against $S/layers-in-a-list --against $S/nan-loss

step "vgg-batchnorm: calibrate the gpu budget (seeds 0-2), then its GPU tables"
run "$PY" -m bench.vgg --gpu

step "early stopping on the gpu budget: each lab's correct hand-in with and without it, and the verdicts it changed"
# (the calibrate step above measured those changes: the bundled set now holds 256 images beyond the
# 10 000 the gpu budget trains on, so cifar-training's checks hold 200 out and stop early there too)
run "$PY" -m bench.verdicts --budget gpu --device cuda --only-correct

step "seconds per hand-in, gpu budget"
run "$PY" -m bench.gpu_times --out bench/gpu-times.json

step "training benchmark (its GPU tables)"
run "$PY" -m bench.training

if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT/calibration"
    for f in reference/*/calibration.yaml; do cp "$f" "$OUT/calibration/$(basename "$(dirname "$f")").yaml"; done
    cp bench/gpu-times.json "$OUT/" 2>/dev/null || true
fi
exit $failed

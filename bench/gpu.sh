#!/usr/bin/env bash
# The prepared GPU run of issue 16, in one call of about 8 minutes; figures go to $OUT.
#
# On the CPU machine first (the GPU image has no pydantic, and nothing can be fetched there):
#     bash bench/gpu.sh prepare        # wheels for Python 3.12 into .gpu-wheels/ (git-ignored)
# Then on the GPU machine, from the repository root (device `run`, carry [".gpu-wheels"]):
#     bash bench/gpu.sh
#
# It prints and writes to $OUT: the GPU and torch; the fused-attention and compile tests on CUDA
# (tests/test_fused_attention.py -k cuda: output and gradients); then bench/detect.py
# --device cuda: eager and compiled rows at batch 8, 32 and the largest that fits, with the
# fraction of the 989 TFLOP/s datasheet peak and of the measured matrix-product rate, peak
# memory, compile time and the loader's clips/s.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = prepare ]; then
    .venv/bin/python -m pip download --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
        --no-deps -d .gpu-wheels pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
        typing-inspection==0.4.5
    grep -qx '/.gpu-wheels/' .git/info/exclude || echo '/.gpu-wheels/' >> .git/info/exclude
    exit
fi

OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
log="$OUT/gpu.txt"
python3 -c 'import pydantic' 2>/dev/null || python3 -m pip install --quiet --no-index --no-deps .gpu-wheels/*.whl
# The packages by their import names, without installing the project (its pins are not the image's).
mkdir -p /tmp/ipad-path
ln -sfn "$PWD/detector" /tmp/ipad-path/ipad_detect
ln -sfn "$PWD/generator" /tmp/ipad-path/ipadgen
export PYTHONPATH=/tmp/ipad-path
{
    date -u
    nvidia-smi -L
    python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())'
    timeout 100 python3 -m pytest -q -p no:cacheprovider tests/test_fused_attention.py -k cuda 2>&1 | tail -3
    timeout 400 python3 bench/detect.py --device cuda --gpu-batch 8 32
} 2>&1 | tee "$log"

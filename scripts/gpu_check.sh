#!/usr/bin/env bash
# The GPU path, checked and measured in one go (issue #10); under 10 minutes on an H100/H200.
#   scripts/gpu_check.sh [OUT_DIR]      (default: $OUT, else ./gpu_out)
# Runs: nvidia-smi; the tests marked `gpu`; scripts/gpu_bench.py (ResNet-50 random weights at 49
# and 100 regions in fp32 and bf16 with the orders compared, batch size from free memory,
# eager vs torch.compile vs CUDA graphs, SAM ViT-B and ViT-H automatic masks by stage).
# Everything lands in OUT_DIR; a summary is printed at the end.
# Without a GPU, `python scripts/gpu_bench.py OUT_DIR --smoke` runs the same steps on the CPU at toy
# sizes (about 90 s here): it checks the script, its numbers mean nothing.
set -u
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-./gpu_out}}"
mkdir -p "$OUT_DIR"
PY="${PYTHON:-python}"
[ -x .venv/bin/python ] && PY=.venv/bin/python
export LIMA_CACHE_DIR="${LIMA_CACHE_DIR:-$OUT_DIR/cache}"

echo "== device" | tee "$OUT_DIR/summary.txt"
nvidia-smi --query-gpu=name,memory.total,memory.used,driver_version --format=csv | tee -a "$OUT_DIR/summary.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())" \
  | tee -a "$OUT_DIR/summary.txt"

echo "== gpu tests" | tee -a "$OUT_DIR/summary.txt"
timeout 240 $PY -m pytest -m gpu tests -q -p no:cacheprovider > "$OUT_DIR/gpu_tests.txt" 2>&1
echo "pytest -m gpu: exit $?; $(tail -1 "$OUT_DIR/gpu_tests.txt")" | tee -a "$OUT_DIR/summary.txt"

echo "== bench" | tee -a "$OUT_DIR/summary.txt"
timeout 420 $PY scripts/gpu_bench.py "$OUT_DIR" 2>"$OUT_DIR/gpu_bench.err" | tee "$OUT_DIR/gpu_bench.txt"
echo "gpu_bench: exit ${PIPESTATUS[0]}" | tee -a "$OUT_DIR/summary.txt"
grep -E "^(resnet50|SAM)" "$OUT_DIR/gpu_bench.txt" >> "$OUT_DIR/summary.txt"
echo "== summary"; cat "$OUT_DIR/summary.txt"

#!/usr/bin/env bash
# One lease of a GPU host (the `device` tool of this workplace, or any CUDA machine with torch):
# the GPU rows of docs/benchmarks.md, then the benchmark's training runs fold by fold within a
# deadline (benchmarks/run_device_folds.py), packed for the trip back.
#
#   bash benchmarks/gpu_session.sh OUT TOTAL_SECONDS
#
# Needs: python3 with torch (CUDA) and numpy/scipy/pyyaml; pydantic from .whl/ when the host
# lacks it (wheels: see docs/benchmark.md, "Runs on a lent GPU"); the catalogues as
# .devcarry/{paper,erass}.npz (models.data.ClusterArrays.save_npz). What comes back (at most 8
# files): OUT/meta.tgz (benchmark JSON, logs, every fold's predictions and history, no weights)
# and OUT/weights.tgz.part-N, the runs with their weights (60 MB at most; see step 3).
set -u
OUT=${1:?OUT}
TOTAL=${2:-540}
T0=$(date +%s)
left() { echo $(( TOTAL - ($(date +%s) - T0) )); }
mkdir -p "$OUT" /tmp/gs
export PYTHONUNBUFFERED=1
if [ -d .whl ] && ! python3 -c "import pydantic" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee /tmp/gs/gpu.txt
python3 -c "import torch, pydantic, sys; print(sys.version, torch.__version__, pydantic.__version__)"

# Concurrent runs share the GPU best through MPS; keep it only if a CUDA context still opens.
if command -v nvidia-cuda-mps-control >/dev/null && nvidia-cuda-mps-control -d 2>/dev/null; then
  if timeout 60 python3 -c "import torch; torch.zeros(1, device='cuda'); print('MPS ok')"; then
    echo "MPS: on" | tee -a /tmp/gs/gpu.txt
  else
    echo quit | nvidia-cuda-mps-control; echo "MPS: failed, off" | tee -a /tmp/gs/gpu.txt
  fi
else
  echo "MPS: not available" | tee -a /tmp/gs/gpu.txt
fi

JOBS=${JOBS:-paper:multimodal@0,1,2,3;paper:multimodal@4,5,6,7;paper:single;paper:multi;erass:single;erass:multi;paper:single_ensemble;erass:multimodal}
ARR="--arrays paper=.devcarry/paper.npz --arrays erass=.devcarry/erass.npz"
# 0. The multimodal network's KDE cubes on the host's cores (numpy), beside the GPU benchmark.
nice -n 19 python3 benchmarks/run_device_folds.py $ARR --jobs "$JOBS" --out /tmp/gs/runs \
  --kde-only --kde-workers 6 > /tmp/gs/kde.log 2>&1 &
KDE_PID=$!

# 1. GPU benchmark rows (nothing else runs on the card meanwhile; the KDE job leaves 10 of the
#    16 cores to the benchmark's host-side preprocessing). On 2026-11-30 a 120 s cap with 12 KDE
#    workers beside it stopped the inference benchmark before it wrote anything; the runner now
#    saves its JSON after each benchmark.
timeout ${BENCH_SECONDS:-240} python3 -m benchmarks --device cuda --only train,inference \
  --out /tmp/gs/bench_cuda.md --json /tmp/gs/bench_cuda.json > /tmp/gs/bench.log 2>&1
echo "bench rc=$? at $(( $(date +%s) - T0 )) s"; tail -n 30 /tmp/gs/bench.log

wait $KDE_PID; echo "KDE rc=$? at $(( $(date +%s) - T0 )) s"; cat /tmp/gs/kde.log | tail -n 5

# 2. Training runs until 45 s before the end (packing needs the rest).
DEADLINE=$(( $(left) - 45 ))
python3 benchmarks/run_device_folds.py $ARR --out /tmp/gs/runs --deadline "$DEADLINE" \
  --parallel "${PARALLEL:-8}" --threads 2 --device cuda --kde-workers 12 --jobs "$JOBS" \
  2>&1 | tee /tmp/gs/folds.log | tail -n 40
nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv >> /tmp/gs/gpu.txt

# 3. Pack: predictions and histories of every fold (no weights) in meta.tgz; then the runs with
#    their weights, in the order of JOBS' first appearance, as one tar stream cut into parts of
#    15 MB (a lease returns at most 8 files of 16 MiB, 64 MiB together): runs that would pass
#    60 MB are left out whole and named. Here: `cat weights.tgz.part-* | tar xz`.
cd /tmp/gs && tar czf "$OUT/meta.tgz" --exclude='*.pt' --exclude='*_kde.npz' gpu.txt bench* kde.log folds.log runs
keep=(); total=0
for run in runs/*/*-*/; do
  size=$(du -sb "$run" | cut -f1)
  if [ $((total + size)) -le 60000000 ]; then keep+=("$run"); total=$((total + size));
  else echo "weights of $run not returned (the 60 MB budget is spent)"; fi
done
if [ ${#keep[@]} -gt 0 ]; then
  tar czf - "${keep[@]}" | split -b 15000000 -d -a 1 - "$OUT/weights.tgz.part-"
fi
ls -la "$OUT"; echo "total $(( $(date +%s) - T0 )) s"

#!/usr/bin/env bash
# First run on a GPU machine, inside 8 minutes: bash benchmarks/gpu_check.sh OUTDIR
# Writes to OUTDIR:
#   gpu.txt             nvidia-smi and torch's view of the device
#   cuda_tests.txt      the tests marked `cuda` (forward/backward equal to the CPU's, exact resume
#                       on CUDA, bf16), with their summary line
#   throughput.json     benchmarks/train_throughput.py on the GPU (bf16): our step and, where the
#                       official I-JEPA checkout is found (IJEPA_DIR, default ../shared/anchors/ijepa),
#                       the official step in the same run, images/s, FLOPs, MFU
#   short_run.json      a timed 2-epoch run of the cifar100_jepa preset and the projected time of
#                       its full schedule (needs CIFAR-100: SPARSEJEPA_CIFAR100 or the download)
# Each part has its own time limit; a part that fails is recorded and the next one runs.
set -u
out=${1:?usage: bash benchmarks/gpu_check.sh OUTDIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
py=${PYTHON:-python}
ijepa=${IJEPA_DIR:-../shared/anchors/ijepa}
status=0

{ nvidia-smi || true; $py -c "import torch; print(torch.__version__, torch.version.cuda, \
torch.cuda.get_device_name(0))"; } > "$out/gpu.txt" 2>&1 || status=1

timeout 150 $py -m pytest -q -m cuda tests/test_cuda.py > "$out/cuda_tests.txt" 2>&1 || status=1

official=()
[ -d "$ijepa/src" ] && official=(--official "$ijepa")
timeout 120 $py benchmarks/train_throughput.py --device cuda --precisions bf16 --steps 20 \
    --warmup 5 --batch 256 "${official[@]}" > "$out/throughput.json" 2> "$out/throughput.err" \
    || status=1

timeout 200 $py - "$out" <<'PY' > "$out/short_run.json" 2> "$out/short_run.err" || status=1
import json, sys, time
from sparsejepa.config import load_config
from sparsejepa.train import train

epochs = 2
cfg = load_config("cifar100_jepa", [f"train.epochs={epochs}", "optim.warmup_epochs=0.5"])
full = load_config("cifar100_jepa")
tic = time.perf_counter()
state = train(cfg, f"{sys.argv[1]}/short_run", resume=False, progress=False)
seconds = time.perf_counter() - tic  # includes start-up and the first steps' warm-up
log = [json.loads(line) for line in open(f"{sys.argv[1]}/short_run/metrics.jsonl")]
print(json.dumps({
    "preset": "cifar100_jepa", "epochs": epochs, "steps": state.step, "wall_s": round(seconds, 1),
    "images_per_s_last_log": log[-1]["images_per_s"], "final": log[-1],
    "projected_full_preset_min": round(seconds / epochs * full.train.epochs / 60, 1),
}, indent=2))
PY
echo "gpu_check finished with status $status; results in $out"
exit $status

#!/usr/bin/env bash
# The speed table of docs/results.md ("FLOPs and MFU"): our step against the official I-JEPA step at
# both geometries, bf16 and fp32, on a quiet machine. Run from the repository root; JSON to OUTDIR.
set -u
py=.venv/bin/python
a=${IJEPA_DIR:-../shared/anchors/ijepa}
out=${1:-runs/bench}
mkdir -p "$out"
$py benchmarks/train_throughput.py --threads 2 --geometry cpu_preset --precisions bf16 fp32 --methods JEPA --official $a --profile --steps 10 --warmup 3 > "$out"/cpu_preset.json 2> "$out"/cpu_preset.err
$py benchmarks/train_throughput.py --threads 2 --geometry benchmark --precisions bf16 fp32 --methods JEPA --official $a --steps 6 --warmup 2 > "$out"/benchmark.json 2> "$out"/benchmark.err
echo done

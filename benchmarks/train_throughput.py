"""Images/s of a full (Sparse)JEPA training step on the current device; JSON to stdout.

Default geometry: ViT-Tiny/4 at 32x32, batch 128, predictor depth 6 width 96, 4 targets. A step is
`sample_batch` (indices, crop, masks, noise) + `train_step` (forward, backward, AdamW, prox, EMA).
Usage: python benchmarks/train_throughput.py [--threads 2] [--steps 8] [--precisions fp32 bf16]
"""

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

from sparsejepa.config import from_dict
from sparsejepa.data import ImageDataset
from sparsejepa.train import build, resolve_device, sample_batch, train_step


def synthetic_dataset(n: int, size: int = 32) -> ImageDataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    y = rng.integers(0, 100, n)
    return ImageDataset(
        "synthetic",
        x,
        x[:8],
        {"fine": y},
        {"fine": y[:8]},
        {"fine": 100},
        (0.5, 0.5, 0.5),
        (0.25, 0.25, 0.25),
    )


def measure(sparse: bool, precision: str, args) -> dict:
    cfg = from_dict(
        {
            "model": {"width": 192, "depth": 12, "heads": 3, "pred_width": 96, "pred_depth": 6},
            "mask": {"num_targets": 4},
            "sparsity": {"enabled": sparse},
            "train": {
                "batch_size": args.batch,
                "device": args.device,
                "precision": precision,
                "compile": args.compile,
                "epochs": 1000,
            },
        }
    )
    state = build(cfg, synthetic_dataset(args.batch * 4))
    times, cpu_times = [], []
    for step in range(args.warmup + args.steps):
        sync = torch.cuda.synchronize if state.device.type == "cuda" else (lambda: None)
        sync()
        tic, cpu_tic = time.perf_counter(), time.process_time()
        train_step(state, sample_batch(state, step))
        sync()
        if step >= args.warmup:
            times.append(time.perf_counter() - tic)
            cpu_times.append(time.process_time() - cpu_tic)
    median, cpu_median = statistics.median(times), statistics.median(cpu_times)
    return {
        "method": "SparseJEPA" if sparse else "JEPA",
        "precision": precision,
        "images_per_s": round(args.batch / median, 1),
        # On a shared CPU wall time also counts other jobs; batch * threads / CPU-seconds estimates
        # what the same threads reach on an idle machine (an upper bound if threads sit idle).
        "idle_estimate_images_per_s": round(args.batch * torch.get_num_threads() / cpu_median, 1),
        "median_step_s": round(median, 4),
        "step_s": [round(t, 4) for t in times],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--precisions", nargs="+", default=None, help="fp32 and/or bf16")
    p.add_argument("--methods", nargs="+", default=["SparseJEPA", "JEPA"])
    p.add_argument("--compile", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    precisions = args.precisions or (["bf16"] if device.type == "cuda" else ["fp32", "bf16"])
    results = [
        measure(method == "SparseJEPA", prec, args)
        for method in args.methods
        for prec in precisions
    ]
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(device)
                if device.type == "cuda"
                else platform.processor() or platform.machine(),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "batch": args.batch,
                "geometry": "ViT-Tiny/4 32x32, predictor 96x6, 4 targets",
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

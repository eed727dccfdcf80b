"""Images/s, FLOPs and MFU of a full (Sparse)JEPA training step on the current device; JSON.

Geometry `benchmark` (default): ViT-Tiny/4 at 32x32, batch 128, predictor depth 6 width 96, 4
targets; `cpu_preset`: the model and masks of the `cifar100_cpu` preset. A step is `sample_batch`
(indices, crop, masks, noise) + `train_step` (forward, backward, AdamW, prox, EMA). FLOPs of one
step are counted by torch.utils.flop_counter (matmuls, convolutions, attention; forward and
backward), and the machine's matmul peak is measured in the same run (a 2048^3 GEMM per
precision), so each result carries gflop_per_image, achieved gflop_s and mfu = gflop_s / peak.
The step's own GEMM shapes (recorded in the counted step) are also timed alone: step_gemm_peak is
what a step of these shapes could reach if everything but its matmuls were free, step_gemm_mfu
the share of it reached. `--profile` adds the top ops by self time (where the rest goes).
`--official DIR` also times the official I-JEPA step (facebookresearch/ijepa checkout at DIR: its
ViT, predictor, multi-block collator, smooth-L1 loss, AdamW and EMA; the collator runs untimed, as
in its loader workers) at the same geometry in the same run, interleaved with ours method by method,
and prints our images/s and FLOP/s over its own per precision.
Usage: python benchmarks/train_throughput.py [--threads 2] [--steps 8] [--precisions fp32 bf16]
       [--geometry benchmark|cpu_preset] [--official ../shared/anchors/ijepa] [--profile]
"""

import argparse
import collections
import copy
import functools
import json
import logging
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from sparsejepa.config import apply_overrides, from_dict, load_config, to_dict
from sparsejepa.data import ImageDataset
from sparsejepa.runtime import resolve_device
from sparsejepa.state import build
from sparsejepa.train import sample_batch, train_step


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


def _summary(times: list[float], cpu_times: list[float], batch: int) -> dict:
    median, cpu_median = statistics.median(times), statistics.median(cpu_times)
    return {
        "images_per_s": round(batch / median, 1),
        # On a shared CPU wall time also counts other jobs; batch * threads / CPU-seconds estimates
        # what the same threads reach on an idle machine (an upper bound if threads sit idle).
        "idle_estimate_images_per_s": round(batch * torch.get_num_threads() / cpu_median, 1),
        "median_step_s": round(median, 4),
        "step_s": [round(t, 4) for t in times],
    }


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def matmul_peak(precision: str, device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n x n x n GEMM in `precision`, the median of `repeats` after a warm-up."""
    a, b = (torch.randn(n, n, device=device, dtype=DTYPES[precision]) for _ in range(2))
    times = []
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        tic = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - tic)
    return 2 * n**3 / statistics.median(times) / 1e9


class GemmShapes(TorchDispatchMode):
    """Records the (batch, m, k, n) of every mm, addmm, bmm and baddbmm of a step, in its dtype."""

    def __init__(self):
        super().__init__()
        self.shapes = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in ("mm", "addmm", "bmm", "baddbmm"):
            a, b = (args[1], args[2]) if name in ("addmm", "baddbmm") else args[:2]
            batch = a.shape[0] if a.ndim == 3 else 1
            self.shapes[(batch, a.shape[-2], a.shape[-1], b.shape[-1], str(a.dtype))] += 1
        return func(*args, **(kwargs or {}))


def step_gemm_peak(
    shapes: collections.Counter, device: torch.device, repeats: int = 5, calls: int = 10
) -> float:
    """GFLOP/s of the step's own GEMMs each run alone (per shape the median over `repeats` of
    `calls` back-to-back products, so a GPU's launch latency is not counted once per call): total
    FLOPs over total time, the most a step of these shapes can reach without the other ops."""
    flops = seconds = 0.0
    for (batch, m, k, n, dtype), count in shapes.items():
        dt = getattr(torch, dtype.removeprefix("torch."))
        a = torch.randn(batch, m, k, device=device, dtype=dt)
        b = torch.randn(batch, k, n, device=device, dtype=dt)
        times = []
        for i in range(repeats + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            tic = time.perf_counter()
            for _ in range(calls):
                torch.bmm(a, b)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:
                times.append((time.perf_counter() - tic) / calls)
        flops += count * 2 * batch * m * k * n
        seconds += count * statistics.median(times)
    return flops / seconds / 1e9


def _flops(step_fn, step: int, prepared) -> tuple[int, collections.Counter]:
    """FLOPs of one call step_fn(step, prepared) (forward and backward) and its GEMM shapes."""
    with FlopCounterMode(display=False) as counter, GemmShapes() as gemms:
        step_fn(step, prepared)
    return counter.get_total_flops(), gemms.shapes


def profile_by_op(step_fn, args, prepare, rows: int = 12) -> list[dict]:
    """Where a step's time goes: the ops with the most self CPU time over `args.steps` steps."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available() and args.device != "cpu":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for i in range(args.steps):
            step_fn(i, prepare(i))
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)
    return [
        {
            "op": e.key,
            "share": round(e.self_cpu_time_total / total, 3),
            "ms_per_step": round(e.self_cpu_time_total / 1e3 / args.steps, 2),
            "calls": e.count,
        }
        for e in events[:rows]
    ]


def _timed(step_fn, args) -> dict:
    """Run step_fn(i) warmup + steps times; the timing summary of the last `steps`, with the
    FLOPs of the first step per image."""
    times, cpu_times = [], []
    cuda = torch.cuda.is_available() and args.device != "cpu"
    for i in range(args.warmup + args.steps):
        prepared = step_fn.prepare(i) if hasattr(step_fn, "prepare") else None
        if i == 0:
            flops, shapes = _flops(step_fn, i, prepared)
            continue
        if cuda:
            torch.cuda.synchronize()
        tic, cpu_tic = time.perf_counter(), time.process_time()
        step_fn(i, prepared)
        if cuda:
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - tic)
            cpu_times.append(time.process_time() - cpu_tic)
    summary = _summary(times, cpu_times, args.batch)
    summary["gflop_per_image"] = round(flops / args.batch / 1e9, 3)
    summary["gflop_s"] = round(flops / 1e9 / summary["median_step_s"], 1)
    device = torch.device("cuda" if cuda else "cpu")
    summary["step_gemm_peak_gflop_s"] = round(step_gemm_peak(shapes, device), 1)
    if args.profile:
        prepare = getattr(step_fn, "prepare", lambda i: None)
        summary["profile"] = profile_by_op(step_fn, args, prepare)
    return summary


def geometry(name: str) -> dict:
    """Model and mask settings of a benchmark geometry (see the module docstring)."""
    if name == "cpu_preset":
        preset = to_dict(load_config("cifar100_cpu"))
        return {"model": preset["model"], "mask": preset["mask"]}
    return {
        "model": {"width": 192, "depth": 12, "heads": 3, "pred_width": 96, "pred_depth": 6},
        "mask": {"num_targets": 4},
    }


def measure(sparse: bool, precision: str, args) -> dict:
    values = {
        **geometry(args.geometry),
        "sparsity": {"enabled": sparse},
        "train": {
            "batch_size": args.batch,
            "device": args.device,
            "precision": precision,
            "compile": args.compile,
            "epochs": 1000,
        },
    }
    cfg = from_dict(apply_overrides(values, args.set))
    state = build(cfg, synthetic_dataset(args.batch * 4))
    result = _timed(lambda step, _: train_step(state, sample_batch(state, step)), args)
    return {"method": "SparseJEPA" if sparse else "JEPA", "precision": precision, **result}


class OfficialStep:
    """The official I-JEPA train step (src/train.py) on the official modules, geometry as ours."""

    def __init__(self, root: str, precision: str, args):
        sys.path.insert(0, root)
        logging.disable(logging.WARNING)
        from src.masks.multiblock import MaskCollator
        from src.models.vision_transformer import VisionTransformer, vit_predictor

        self.device = resolve_device(args.device)
        torch.manual_seed(0)
        m = {"heads": 3, "pred_width": 96, "pred_depth": 6, **geometry(args.geometry)["model"]}
        self.encoder = VisionTransformer(
            img_size=[32], patch_size=4, embed_dim=m["width"], depth=m["depth"],
            num_heads=m["heads"], mlp_ratio=4, qkv_bias=True,
            norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6),
        ).to(self.device)  # fmt: skip
        self.predictor = vit_predictor(
            num_patches=self.encoder.patch_embed.num_patches,
            embed_dim=self.encoder.embed_dim,
            predictor_embed_dim=m["pred_width"],
            depth=m["pred_depth"],
            num_heads=m["heads"],
        ).to(self.device)
        self.target = copy.deepcopy(self.encoder).requires_grad_(False)
        params = [*self.encoder.parameters(), *self.predictor.parameters()]
        self.adamw = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.04)
        # min_keep=4: with the default 10 the official collator never finds a valid 8x8 mask.
        self.collator = MaskCollator(
            input_size=(32, 32),
            patch_size=4,
            pred_mask_scale=(0.15, 0.2),
            enc_mask_scale=(0.85, 1.0),
            aspect_ratio=(0.75, 1.5),
            nenc=1,
            npred=4,
            allow_overlap=False,
            min_keep=4,
        )
        self.bf16, self.batch = precision == "bf16", args.batch

    def prepare(self, step: int):
        images = torch.randn(self.batch, 3, 32, 32, generator=torch.Generator().manual_seed(step))
        _, enc_masks, pred_masks = self.collator([(img, 0) for img in images])
        move = lambda ms: [m.to(self.device) for m in ms]  # noqa: E731
        return images.to(self.device), move(enc_masks), move(pred_masks)

    def __call__(self, step: int, prepared) -> None:
        from src.masks.utils import apply_masks
        from src.utils.tensors import repeat_interleave_batch

        images, enc_masks, pred_masks = prepared
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            with torch.no_grad():
                h = self.target(images)
                h = F.layer_norm(h, (h.size(-1),))
                h = repeat_interleave_batch(apply_masks(h, pred_masks), self.batch, len(enc_masks))
            z = self.predictor(self.encoder(images, enc_masks), enc_masks, pred_masks)
            loss = F.smooth_l1_loss(z, h)
        loss.backward()
        self.adamw.step()
        self.adamw.zero_grad()
        with torch.no_grad():
            for q, k in zip(self.encoder.parameters(), self.target.parameters(), strict=True):
                k.mul_(0.996).add_((1 - 0.996) * q.detach())


def measure_official(root: str, precision: str, args) -> dict:
    result = _timed(OfficialStep(root, precision, args), args)
    return {"method": "I-JEPA official", "precision": precision, **result}


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
    p.add_argument("--geometry", default="benchmark", choices=["benchmark", "cpu_preset"])
    p.add_argument("--official", default=None, help="facebookresearch/ijepa checkout to time too")
    p.add_argument("--set", action="append", default=[], help="config override key=value")
    p.add_argument("--profile", action="store_true", help="add the top ops by self CPU time")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    precisions = args.precisions or (["bf16"] if device.type == "cuda" else ["fp32", "bf16"])
    peaks = {prec: round(matmul_peak(prec, device), 1) for prec in precisions}
    results = []
    for prec in precisions:
        for method in args.methods:
            results.append(measure(method == "SparseJEPA", prec, args))
        if args.official:
            results.append(measure_official(args.official, prec, args))
    for r in results:
        r["mfu"] = round(r["gflop_s"] / peaks[r["precision"]], 3)
        r["step_gemm_mfu"] = round(r["gflop_s"] / r["step_gemm_peak_gflop_s"], 3)
    pairs = [
        (r, o)
        for r in results
        for o in results
        if o["method"] == "I-JEPA official"
        and r["method"] != o["method"]
        and r["precision"] == o["precision"]
    ]
    ratios = {
        f"{r['method']}/official {r['precision']}": {
            "images_per_s": round(r["images_per_s"] / o["images_per_s"], 3),
            "gflop_s": round(r["gflop_s"] / o["gflop_s"], 3),
        }
        for r, o in pairs
    }
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(device)
                if device.type == "cuda"
                else platform.processor() or platform.machine(),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "batch": args.batch,
                "geometry": args.geometry,
                "matmul_peak_gflop_s": peaks,
                "overrides": args.set,
                "results": results,
                "ratio_to_official": ratios,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

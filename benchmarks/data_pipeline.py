"""Timings of the data side: shapes generation, random resized crop, batch indices, probes.

    python benchmarks/data_pipeline.py [--threads 2] [--device cpu]

Prints one JSON object (seconds). Numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from sparsejepa.augment import batch_indices, normalize, random_resized_crop
from sparsejepa.data import load_dataset
from sparsejepa.probe import knn_probe


def timed(fn, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out = {"threads": args.threads, "device": str(device), "machine": platform.machine()}

    start = time.perf_counter()
    shapes = load_dataset("shapes", n_train=20000, n_test=5000)
    out["shapes_generate_20k_plus_5k_s"] = time.perf_counter() - start

    x = torch.from_numpy(shapes.x_train[:128]).to(device)
    images = normalize(x, shapes.mean, shapes.std)
    generator = torch.Generator(device=device).manual_seed(0)
    random_resized_crop(images, generator)  # warm-up

    def crop() -> None:
        random_resized_crop(images, generator)
        sync()

    out["random_resized_crop_batch128_s"] = timed(crop, repeat=50)
    out["normalize_batch128_s"] = timed(lambda: normalize(x, shapes.mean, shapes.std), repeat=50)
    out["batch_indices_s"] = timed(lambda: batch_indices(50000, 128, 1234, 0, device), 1000)

    gen = torch.Generator().manual_seed(0)
    train_x, test_x = torch.randn(50000, 768, generator=gen), torch.randn(10000, 768, generator=gen)
    train_y = torch.randint(0, 100, (50000,), generator=gen)
    test_y = torch.randint(0, 100, (10000,), generator=gen)
    out["knn_probe_50000x768_vs_10000_s"] = timed(
        lambda: knn_probe(train_x, train_y, test_x, test_y, 100)
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

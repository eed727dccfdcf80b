"""The floor a short run must clear: a preset's encoder at initialisation, probed as if trained.

    python experiments/probe_untrained.py [--preset cifar100_cpu] [--set KEY=VALUE ...]
        [--out runs/untrained]

Builds the training state of the preset (`state.build` seeds it with `train.seed`: the weights a
run of that config starts from), writes it as OUT/ckpt.pt at step 0 and runs the converged probe of
`sparsejepa probe` on its target encoder (the config's data set and sizes; CIFAR-100's full split
for the preset) into OUT/probe_DATASET.json.
"""

import argparse
import json
from pathlib import Path

from sparsejepa import checkpoint
from sparsejepa.config import load_config
from sparsejepa.probe import probe_checkpoint
from sparsejepa.state import build, load_training_set

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cifar100_cpu")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default="runs/untrained")
    args = ap.parse_args()
    cfg = load_config(args.preset, args.set)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint.save(out / "ckpt.pt", build(cfg, load_training_set(cfg)))
    result = probe_checkpoint(out / "ckpt.pt", out=out / f"probe_{cfg.data.dataset}.json")
    print(json.dumps({t: r["best_by_val"]["top1"] for t, r in result["tasks"].items()}))

"""The folder a training run writes into: one training process at a time (an flock), the files of
a previous run set aside before a fresh one, the metrics log cut back to the step a run resumes
from."""

import contextlib
import fcntl
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path


class RunFolderLocked(RuntimeError):
    """Another process is training in the same run folder."""


LOCK = "train.lock"
# What a training run writes into its folder (and `sparsejepa probe` beside its checkpoint).
RUN_FILES = (
    "ckpt.pt",
    "ckpt.pt.tmp",
    "metrics.jsonl",
    "config.json",
    "probe*.json",
    "features_*.pt",
)


def log_row(log, row: dict) -> None:
    """Append one metrics row to the open metrics.jsonl `log` and flush it; NaN becomes null (strict
    JSON readers reject NaN)."""
    clean = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
    log.write(json.dumps(clean) + "\n")
    log.flush()


@contextlib.contextmanager
def locked_run_folder(folder: str | Path):
    """Hold an exclusive lock on a run folder (an flock on FOLDER/train.lock, which names the
    holder's pid) while training in it; RunFolderLocked when another process holds it. The
    system drops the lock when its holder exits, even by kill -9, so no stale lock remains."""
    path = Path(folder) / LOCK
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise RunFolderLocked(
            f"run folder {folder} is in use by another training process (pid {holder}); wait "
            "for it to finish or stop it, or train into another --out"
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def set_aside_previous_run(folder: str | Path) -> Path | None:
    """Move the files of the run previously trained in `folder` (`RUN_FILES`) into
    FOLDER/replaced-YYYYmmdd-HHMMSS/, so a fresh run never mixes with it; returns that folder
    (None when there was nothing to move). Nothing is deleted."""
    folder = Path(folder)
    files = sorted({f for pattern in RUN_FILES for f in folder.glob(pattern) if f.is_file()})
    if not files:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside, n = folder / f"replaced-{stamp}", 1
    while aside.exists():
        n += 1
        aside = folder / f"replaced-{stamp}-{n}"
    aside.mkdir()
    for file in files:
        shutil.move(file, aside / file.name)
    return aside


def trim_log(path: str | Path, step: int) -> int:
    """Keep the rows of metrics.jsonl `path` up to `step` (the checkpoint a run resumes from):
    rows logged after it by a run killed before its next checkpoint, and a row cut short by the
    kill, are dropped, since the resumed run logs those steps again. Returns the rows dropped."""
    path = Path(path)
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
            keep = int(row["step"]) <= step
        except (ValueError, KeyError, TypeError):
            keep = False
        if keep:
            kept.append(line + "\n")
        else:
            dropped += bool(line.strip())
    if dropped:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, path)
        print(
            f"{path}: dropped {dropped} rows logged after step {step}, the step this run "
            "resumes from",
            file=sys.stderr,
        )
    return dropped

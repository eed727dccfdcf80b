"""Pure step -> value schedules: warm-up + cosine LR, cosine weight decay, linear EMA momentum,
linear ramps."""

import math


def cosine_lr(
    step: int, total: int, warmup: int, peak: float, final: float, start: float = 0.0
) -> float:
    """Linear warm-up start -> peak over `warmup` steps, then cosine peak -> final until `total`."""
    if step < warmup:
        return start + (peak - start) * step / max(warmup, 1)
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return final + 0.5 * (peak - final) * (1.0 + math.cos(math.pi * progress))


def cosine_wd(step: int, total: int, start: float, end: float) -> float:
    """Weight decay increasing start -> end along a half cosine (I-JEPA: 0.04 -> 0.4)."""
    progress = min(step / max(total, 1), 1.0)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * progress))


def ema_momentum(step: int, total: int, start: float, end: float) -> float:
    """EMA momentum linear start -> end (I-JEPA: 0.996 -> 1.0)."""
    return start + (end - start) * min(step / max(total, 1), 1.0)


def linear_ramp(step: int, total: int, start: float, end: float) -> float:
    """0 before start * total, 1 from end * total, linear between (start == end: a switch)."""
    progress = step / max(total, 1)
    if progress >= end:
        return 1.0
    return max(0.0, (progress - start) / (end - start)) if end > start else 0.0

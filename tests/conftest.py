"""Shared fixtures: the real CIFAR-100 npz where this machine has it (else its tests skip)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_NPZ = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar100" / "cifar100.npz"


@pytest.fixture(scope="session")
def cifar100_npz() -> Path:
    """The CIFAR-100 npz: env SPARSEJEPA_CIFAR100, else ../shared/data/cifar100/, else skip."""
    candidates = [os.environ.get("SPARSEJEPA_CIFAR100"), SHARED_NPZ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and str(candidate).endswith(".npz"):
            return Path(candidate)
    pytest.skip("CIFAR-100 npz not available (set SPARSEJEPA_CIFAR100)")

"""The training core on a CUDA GPU: forward/backward equal to the CPU's, exact resume, bf16.

Marked `cuda`; they skip where no GPU is visible (every CI machine here), and
`benchmarks/gpu_check.sh` runs them on a machine with one.
"""

import dataclasses

import pytest
import torch
from test_checkpoint import _weights
from test_train import tiny_config, tiny_dataset

from sparsejepa.state import build
from sparsejepa.train import Batch, read_metrics, sample_batch, train, train_step

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]


def _weights_after_one_step(device: str) -> dict[str, torch.Tensor]:
    """One update from the same seeded initialisation on the CPU's batch (crops and noise drawn
    on the CPU: CUDA generators draw other numbers)."""
    state = build(tiny_config(train={"device": device}), tiny_dataset(), torch.device(device))
    cpu_batch = sample_batch(build(tiny_config(), tiny_dataset()), 0)
    moved = {f.name: getattr(cpu_batch, f.name) for f in dataclasses.fields(cpu_batch)}
    train_step(state, Batch(**{k: None if v is None else v.to(device) for k, v in moved.items()}))
    return {k: v.detach().cpu() for k, v in _weights(state).items()}


def test_a_cuda_step_matches_the_cpu_step():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    cpu, cuda = _weights_after_one_step("cpu"), _weights_after_one_step("cuda")
    assert cpu.keys() == cuda.keys()
    for key in cpu:
        torch.testing.assert_close(cuda[key], cpu[key], atol=1e-4, rtol=1e-3, msg=key)


def test_resume_on_cuda_equals_the_uninterrupted_run(tmp_path, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    try:
        cfg = tiny_config(train={"device": "cuda"})
        data = tiny_dataset()
        full = train(cfg, tmp_path / "full", dataset=data, progress=False)
        train(cfg, tmp_path / "split", dataset=data, progress=False, stop_at=5)
        resumed = train(cfg, tmp_path / "split", dataset=data, progress=False)
    finally:
        torch.use_deterministic_algorithms(False)
    a, b = _weights(full), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_bf16_training_on_cuda_stays_finite_and_learns():
    cfg = tiny_config(train={"device": "cuda", "precision": "bf16", "epochs": 8})
    state = build(cfg, tiny_dataset())
    losses = torch.stack(
        [train_step(state, sample_batch(state, step))["jepa"] for step in range(12)]
    )
    assert torch.isfinite(losses).all()
    assert next(state.student.parameters()).dtype == torch.float32  # fp32 master weights


@pytest.mark.parametrize("sparse", [False, True])
def test_a_cuda_step_never_waits_for_the_device(sparse):
    """CUDA's own sync check over a step of the loop, batch drawing included (after a warm-up step
    that allocates the pinned buffers)."""
    cfg = tiny_config(sparsity={"enabled": sparse}, train={"device": "cuda", "precision": "bf16"})
    state = build(cfg, tiny_dataset())
    train_step(state, sample_batch(state, 0))
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        metrics = train_step(state, sample_batch(state, 1))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert read_metrics(state, metrics)["loss"] > 0

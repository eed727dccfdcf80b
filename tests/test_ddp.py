"""Two CPU processes with the gloo backend (as torchrun would start them) must stay in sync."""

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    from test_train import tiny_config, tiny_dataset

    from sparsejepa.train import train

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    try:
        state = train(
            tiny_config(train={"epochs": 1, "batch_size": 16}),
            out_dir,
            dataset=tiny_dataset(),
            progress=False,
        )
        assert state.world == world and state.rank == rank
        weights = {
            **state.student.state_dict(),
            **{f"t.{k}": v for k, v in state.target.state_dict().items()},
        }
        torch.save({"weights": weights, "step": state.step}, f"{out_dir}/rank{rank}.pt")
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_two_process_gloo_training_agrees(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt", weights_only=True)
    b = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert a["step"] == b["step"] == 3
    assert a["weights"].keys() == b["weights"].keys()
    for key in a["weights"]:
        assert torch.allclose(a["weights"][key], b["weights"][key], atol=1e-6), key
    # Only rank 0 writes the run files.
    assert (tmp_path / "ckpt.pt").is_file() and (tmp_path / "metrics.jsonl").is_file()

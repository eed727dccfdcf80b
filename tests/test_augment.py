"""Batched augmentation and the stateless batch sampler."""

from __future__ import annotations

import math

import pytest
import torch

from sparsejepa import augment
from sparsejepa.augment import batch_indices, crop_boxes, normalize, random_resized_crop


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_normalize_values_layout_and_errors():
    x = torch.zeros(2, 4, 5, 3, dtype=torch.uint8)
    x[..., 0] = 255
    x[1, 2, 3, 2] = 51
    mean, std = (0.5, 0.25, 0.1), (0.2, 0.5, 0.3)
    out = normalize(x, mean, std)
    assert out.shape == (2, 3, 4, 5) and out.dtype == torch.float32 and out.is_contiguous()
    torch.testing.assert_close(out[:, 0], torch.full((2, 4, 5), (1 - 0.5) / 0.2))
    torch.testing.assert_close(out[0, 1], torch.full((4, 5), -0.25 / 0.5))
    assert math.isclose(out[1, 2, 2, 3].item(), (0.2 - 0.1) / 0.3, rel_tol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        normalize(x.float(), mean, std)
    with pytest.raises(ValueError, match=r"\(B, H, W, 3\)"):
        normalize(x.permute(0, 3, 1, 2), mean, std)
    with pytest.raises(ValueError, match="std > 0"):
        normalize(x, mean, (0.2, 0.0, 0.3))


def test_full_crop_is_the_identity_and_flip_mirrors():
    x = torch.randn(16, 3, 8, 8)
    out = random_resized_crop(x, seeded(0), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)
    flipped = random_resized_crop(x, seeded(0), scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=True)
    is_same = (flipped - x).abs().amax(dim=(1, 2, 3)) < 1e-5
    is_mirror = (flipped - x.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-5
    assert torch.all(is_same ^ is_mirror) and is_same.any() and is_mirror.any()


def test_crop_boxes_follow_scale_and_ratio():
    w, h, cx, cy, flip = crop_boxes(20000, seeded(1), (0.3, 1.0), (3 / 4, 4 / 3))
    area, aspect = w * h, w / h  # the box is (2w) x (2h) of the 2 x 2 image
    unclamped = (w < 1) & (h < 1)
    assert unclamped.float().mean() > 0.97
    assert area[unclamped].min() >= 0.3 - 1e-9 and area.max() <= 1 + 1e-9
    assert aspect[unclamped].min() >= 0.75 - 1e-9 and aspect[unclamped].max() <= 4 / 3 + 1e-9
    assert torch.all(cx.abs() + w <= 1 + 1e-9) and torch.all(cy.abs() + h <= 1 + 1e-9)
    assert torch.all(flip == 1)
    # log-uniform ratio: log aspect is symmetric about 0 for a symmetric ratio range
    assert abs(aspect[unclamped].log().mean().item()) < 0.01
    assert 0.55 < area[unclamped].mean().item() < 0.7  # U(0.3, 1) has mean 0.65, before rejection


def test_crop_samples_the_box_it_drew():
    """On a ramp image whose value is the x (or y) coordinate, the output is that of the box."""
    size, batch = 16, 32
    centres = (2 * torch.arange(size) + 1) / size - 1  # pixel centres in affine_grid units
    image = torch.stack([centres.expand(size, size), centres[:, None].expand(size, size)])
    x = image.expand(batch, 2, size, size).contiguous()
    out = random_resized_crop(x, seeded(3), hflip=True)
    w, h, cx, cy, flip = crop_boxes(batch, seeded(3), (0.3, 1.0), (3 / 4, 4 / 3), hflip=True)
    expect_x = flip[:, None] * w[:, None] * centres + cx[:, None]  # (B, W)
    expect_y = h[:, None] * centres + cy[:, None]  # (B, H)
    inside_x = expect_x.abs() <= 1 - 1 / size  # bilinear on a ramp is exact between centres
    inside_y = expect_y.abs() <= 1 - 1 / size
    got_x, got_y = out[:, 0, size // 2, :].double(), out[:, 1, :, size // 2].double()
    torch.testing.assert_close(got_x[inside_x], expect_x[inside_x], atol=1e-5, rtol=0)
    torch.testing.assert_close(got_y[inside_y], expect_y[inside_y], atol=1e-5, rtol=0)
    assert inside_x.float().mean() > 0.8


def test_crop_is_seeded_and_independent_per_sample():
    x = torch.randn(8, 3, 12, 12)
    a, b = random_resized_crop(x, seeded(5)), random_resized_crop(x, seeded(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, random_resized_crop(x, seeded(6)))
    generator = seeded(5)
    first, second = random_resized_crop(x, generator), random_resized_crop(x, generator)
    assert torch.equal(first, a) and not torch.equal(first, second)
    same = x[:1].expand(8, 3, 12, 12)
    crops = random_resized_crop(same, seeded(0))
    gaps = torch.cdist(crops.flatten(1), crops.flatten(1)) + torch.eye(8) * 1e9
    assert gaps.min() > 1e-3  # every sample gets its own crop
    with pytest.raises(ValueError, match="float"):
        random_resized_crop(x.to(torch.uint8), seeded(0))
    with pytest.raises(ValueError, match="scale"):
        random_resized_crop(x, seeded(0), scale=(0.5, 1.5))


def test_batch_indices_is_a_pure_function_of_seed_and_step():
    n, batch, seed = 103, 10, 4
    steps = list(range(25))  # 10 steps per epoch: 2.5 epochs
    in_order = [batch_indices(n, batch, s, seed, "cpu") for s in steps]
    augment._epoch_permutation.cache_clear()
    for s in reversed(steps):  # another call history, other seeds interleaved
        batch_indices(n, batch, s, seed + 1, "cpu")
        torch.testing.assert_close(batch_indices(n, batch, s, seed, "cpu"), in_order[s])
    assert all(b.dtype == torch.int64 and b.shape == (batch,) for b in in_order)
    epoch0, epoch1 = torch.cat(in_order[:10]), torch.cat(in_order[10:20])
    assert len(set(epoch0.tolist())) == 100 and len(set(epoch1.tolist())) == 100  # drop_last
    assert epoch0.min() >= 0 and epoch0.max() < n
    assert not torch.equal(epoch0, epoch1)
    assert not torch.equal(in_order[0], batch_indices(n, batch, 0, seed + 1, "cpu"))


def test_batch_indices_returns_a_copy_and_checks_arguments():
    first = batch_indices(50, 5, 0, 0, "cpu")
    expected = first.clone()
    first.fill_(-1)
    torch.testing.assert_close(batch_indices(50, 5, 0, 0, "cpu"), expected)
    with pytest.raises(ValueError, match="batch_size"):
        batch_indices(5, 10, 0, 0, "cpu")
    with pytest.raises(ValueError, match="step"):
        batch_indices(50, 5, -1, 0, "cpu")

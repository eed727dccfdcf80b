import torch

from sparsejepa.vit import Encoder, Predictor, sincos_2d


def test_sincos_positions_distinct_and_bounded():
    pos = sincos_2d(8, 32)
    assert pos.shape == (64, 32) and pos.abs().max() <= 1.0
    assert torch.cdist(pos, pos).add(torch.eye(64) * 10).min() > 1e-3


def test_encoder_shapes_and_kept_indices_match_full_run_for_one_block():
    torch.manual_seed(0)
    enc = Encoder(img_size=16, patch=4, width=32, depth=2, heads=2)
    x = torch.randn(3, 3, 16, 16)
    full = enc(x)
    assert full.shape == (3, 16, 32)
    keep = torch.tensor([[0, 5, 7], [1, 2, 3], [4, 8, 15]])
    assert enc(x, keep).shape == (3, 3, 32)
    # Embeddings at kept positions equal the gathered full embeddings.
    emb = enc.embed(x)
    kept = enc.embed(x, keep)
    assert torch.allclose(kept[1], emb[1, [1, 2, 3]])


def test_layer_outputs_are_normed_and_last_equals_forward():
    torch.manual_seed(0)
    enc = Encoder(img_size=16, patch=4, width=32, depth=3, heads=2)
    x = torch.randn(2, 3, 16, 16)
    outs = enc.layer_outputs(x, 2)
    assert len(outs) == 2 and all(o.shape == (2, 16, 32) for o in outs)
    assert torch.allclose(outs[-1], enc(x), atol=1e-6)


def test_bad_image_shape_is_a_clear_error():
    enc = Encoder(img_size=16, patch=4, width=32, depth=1, heads=2)
    try:
        enc(torch.randn(2, 16, 16, 3))
    except ValueError as err:
        assert "expected images" in str(err)
    else:
        raise AssertionError("no error for NHWC input")


def test_predictor_batched_targets_equal_one_pass_per_target():
    torch.manual_seed(0)
    pred = Predictor(grid=4, enc_width=32, width=16, depth=2, heads=2)
    ctx = torch.randn(2, 5, 32)
    ctx_idx = torch.tensor([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])
    tgt_idx = torch.tensor([[[10, 11], [12, 13], [14, 15]], [[0, 1], [2, 3], [4, 11]]])
    batched = pred(ctx, ctx_idx, tgt_idx)
    assert batched.shape == (6, 2, 32)
    for m in range(3):
        single = pred(ctx, ctx_idx, tgt_idx[:, m : m + 1])
        assert torch.allclose(batched.view(2, 3, 2, 32)[:, m], single, atol=1e-5)


def test_padded_context_equals_each_sample_run_alone():
    """Padding + key mask is exact: real tokens (and the predictions) do not see the padding."""
    torch.manual_seed(0)
    enc = Encoder(img_size=16, patch=4, width=32, depth=2, heads=2)
    pred = Predictor(enc.grid, 32, width=16, depth=2, heads=2)
    x = torch.randn(2, 3, 16, 16)
    rows = [[0, 2, 5, 9, 11], [1, 3, 4]]
    keep = torch.tensor([rows[0], rows[1] + [0, 0]])
    valid = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    targets = torch.tensor([[[6, 7]], [[12, 13]]])
    h = enc(x, keep, valid)
    p = pred(h, keep, targets, valid)
    for i, r in enumerate(rows):
        alone = enc(x[i : i + 1], torch.tensor([r]))
        assert torch.allclose(h[i, : len(r)], alone[0], atol=1e-5)
        p_alone = pred(alone, torch.tensor([r]), targets[i : i + 1])
        assert torch.allclose(p[i], p_alone[0], atol=1e-5)


def test_residual_projections_are_rescaled_by_depth():
    torch.manual_seed(0)
    enc = Encoder(img_size=16, patch=4, width=64, depth=4, heads=2)
    stds = [float(blk.proj.weight.detach().std()) for blk in enc.blocks]
    # I-JEPA init: block i's output projections have std 0.02 / sqrt(2 (i + 1)).
    for i, s in enumerate(stds):
        assert abs(s - 0.02 / (2 * (i + 1)) ** 0.5) < 0.15 * s


def test_patch_embed_std_sets_the_content_to_position_ratio():
    torch.manual_seed(0)
    small = Encoder(img_size=32, patch=4, width=128, depth=1, heads=2)
    fan_in = Encoder(img_size=32, patch=4, width=128, depth=1, heads=2, patch_embed_std=48**-0.5)
    assert abs(float(small.patch_embed.weight.detach().std()) - 0.02) < 0.002
    assert abs(float(fan_in.patch_embed.weight.detach().std()) - 48**-0.5) < 0.01

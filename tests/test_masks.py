import pytest
import torch

from sparsejepa.masks import sample_masks


def _draw(seed=0, batch=64, grid=8, **kw):
    return sample_masks(batch, grid, torch.Generator().manual_seed(seed), **kw)


def _valid(m):
    if m.context_valid is None:
        return torch.ones_like(m.context, dtype=torch.bool)
    return m.context_valid


def _context_sets(m, n=64):
    """(B, n) bool: which patches each sample's context encoder sees (padding excluded)."""
    sets = torch.zeros(len(m.context), n, dtype=torch.int64)
    return sets.scatter_add_(1, m.context, _valid(m).long())


@pytest.mark.parametrize("pad", [True, False])
def test_shapes_and_index_ranges(pad):
    m = _draw(num_targets=4, pad=pad)
    assert m.context.ndim == 2 and m.targets.shape[:2] == (64, 4)
    assert m.context.min() >= 0 and m.context.max() < 64
    assert m.targets.min() >= 0 and m.targets.max() < 64
    # Sorted, no duplicates within a sample (the real entries of a padded row).
    steps = m.context.diff(dim=-1) > 0
    assert (steps | ~_valid(m)[:, 1:]).all() and (m.targets.diff(dim=-1) > 0).all()
    assert _context_sets(m).max() == 1


def test_padding_keeps_the_whole_context_and_cut_keeps_the_minimum():
    padded, cut = _draw(3, pad=True), _draw(3, pad=False)
    counts = padded.context_valid.sum(-1)
    assert cut.context_valid is None and cut.context.shape[1] == counts.min()
    assert padded.context.shape[1] == counts.max() > counts.min()  # rows really differ in length
    # Valid entries come first; the context is the context block minus every target patch.
    assert (padded.context_valid.long().diff(dim=-1) <= 0).all()
    assert (padded.context[~padded.context_valid] == 0).all()
    assert torch.equal(padded.targets, cut.targets)
    assert (_context_sets(cut) <= _context_sets(padded)).all()


@pytest.mark.parametrize("pad", [True, False])
def test_context_and_targets_disjoint(pad):
    for seed in range(5):
        m = _draw(seed, pad=pad)
        tgt = torch.zeros(64, 64, dtype=torch.bool).scatter_(1, m.targets.flatten(1), True)
        assert not (_context_sets(m).bool() & tgt).any()


def test_target_blocks_are_rectangles_touching_all_edges():
    touched = torch.zeros(8, 8, dtype=torch.bool)
    for seed in range(30):
        m = _draw(seed)
        rows, cols = m.targets // 8, m.targets % 8
        h = rows.amax(-1) - rows.amin(-1) + 1
        w = cols.amax(-1) - cols.amin(-1) + 1
        assert torch.equal(h * w, torch.full_like(h, m.targets.shape[-1]))  # full rectangles
        touched |= (
            torch.zeros(64, dtype=torch.bool).index_fill_(0, m.targets.flatten(), True).view(8, 8)
        )
    # Inclusive upper bound: the last row and column are reachable.
    assert touched[-1].all() and touched[:, -1].all()


def test_every_patch_reaches_context_and_targets():
    ctx_hits = torch.zeros(64)
    tgt_hits = torch.zeros(64)
    for seed in range(100):
        m = _draw(seed)
        ctx_hits += _context_sets(m).sum(0)
        tgt_hits += torch.bincount(m.targets.flatten(), minlength=64)
    assert (ctx_hits > 0).all() and (tgt_hits > 0).all()
    # No raster-order bias: truncating in raster order would favour early (top-left) indices; the
    # hit map must instead be symmetric under a 180-degree rotation.
    for hits in (ctx_hits.view(8, 8), tgt_hits.view(8, 8)):
        rotated = hits.flip(0).flip(1)
        assert ((hits - rotated).abs() / rotated).max() < 0.2


@pytest.mark.parametrize("min_keep", [4, 10, 20])
def test_min_keep_respected(min_keep):
    for seed in range(10):
        assert _draw(seed, min_keep=min_keep).context_valid.sum(-1).min() >= min_keep
        assert _draw(seed, min_keep=min_keep, pad=False).context.shape[1] >= min_keep


def test_impossible_min_keep_is_a_clear_error():
    with pytest.raises(ValueError, match="min_keep"):
        _draw(min_keep=65)
    with pytest.raises(RuntimeError, match="min_keep"):
        _draw(min_keep=64, max_tries=3)


def test_deterministic_for_a_seed():
    a, b, c = _draw(7), _draw(7), _draw(8)
    assert torch.equal(a.context, b.context) and torch.equal(a.targets, b.targets)
    assert not (a.context.shape == c.context.shape and torch.equal(a.context, c.context))


def test_scale_and_aspect_drawn_independently():
    sizes = set()
    for seed in range(200):
        m = _draw(seed, batch=1)
        rows, cols = m.targets // 8, m.targets % 8
        sizes.add((int(rows.amax() - rows.amin() + 1), int(cols.amax() - cols.amin() + 1)))
    # Several distinct (h, w) shapes, tall and wide: the draws are not tied to one number.
    assert len(sizes) >= 3
    assert any(h > w for h, w in sizes) and any(w > h for h, w in sizes)

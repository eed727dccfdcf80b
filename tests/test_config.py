import pytest

from sparsejepa.config import Config, ConfigError, from_dict, load_config, presets, to_dict


def test_presets_load_and_vit_tiny_geometry():
    assert {"demo", "cifar100_cpu", "cifar100_jepa", "cifar100_sparsejepa"} <= set(presets())
    for name in presets():
        assert isinstance(load_config(name), Config)
    jepa, sparse = load_config("cifar100_jepa"), load_config("cifar100_sparsejepa")
    for cfg in (jepa, sparse):
        m = cfg.model
        assert (m.width, m.depth, m.heads, m.patch, m.img_size) == (192, 12, 3, 4, 32)
    assert not jepa.sparsity.enabled and sparse.sparsity.enabled
    assert load_config("demo").data.dataset == "shapes"


def test_overrides_are_typed():
    cfg = load_config(
        "demo",
        [
            "optim.lr=5e-4",
            "sparsity.enabled=false",
            "train.epochs=2",
            "mask.target_scale=[0.1, 0.2]",
            "data.n_train=null",
        ],
    )
    assert cfg.optim.lr == 5e-4 and cfg.sparsity.enabled is False
    assert cfg.train.epochs == 2.0 and isinstance(cfg.train.epochs, float)
    assert cfg.mask.target_scale == (0.1, 0.2) and cfg.data.n_train is None


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", "unknown config key 'optim.lrr'"),
        ("nosection.x=1", "unknown config key 'nosection'"),
        ("train.batch_size=abc", "train.batch_size: expected int"),
        ("sparsity.enabled=3", "sparsity.enabled: expected bool"),
        ("mask.target_scale=0.2", "mask.target_scale: expected a list"),
        ("optim.loss=l1", "optim.loss: must be one of"),
        ("train.batch_size=0", "train.batch_size=0: must be >= 1"),
        ("model.width=36", r"sparsity.groups=8: must divide model.width=36"),
        ("optim.lr", "must look like section.key=value"),
    ],
)
def test_bad_overrides_are_clear_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("demo", [override])


def test_unknown_preset_and_round_trip(tmp_path):
    with pytest.raises(ConfigError, match="presets"):
        load_config("no_such_preset")
    cfg = load_config("cifar100_sparsejepa")
    assert from_dict(to_dict(cfg)) == cfg
    path = tmp_path / "my.yaml"
    path.write_text("model: {width: 64, heads: 2}\nsparsity: {groups: 4}\n")
    assert load_config(str(path)).model.width == 64

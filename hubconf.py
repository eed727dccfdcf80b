"""torch.hub entry points: one per released encoder of checkpoints/MANIFEST.json.

    encoder = torch.hub.load("/path/to/clone", "jepa_s0", source="local")
    features = encoder(images).mean(1)  # images normalised as encoder.transform does

Each returns the frozen target encoder (eval mode, float32) with the release's `transform`
(uint8 HWC or float CHW images -> normalised (N, 3, S, S)), `mean`, `std`, `img_size` and the full
`release` (config, probe results, group matrix, history) attached. A release name that is not a
Python identifier is reachable with dots as underscores (a release `x_lam0.3_s0` as `x_lam0_3_s0`)
or through `release("x_lam0.3_s0")`. `sparsejepa.load(name)` gives the same without torch.hub.
"""

dependencies = ["torch", "numpy", "safetensors", "yaml"]


def release(name: str, pretrained: bool = True, device: str = "cpu", **kwargs):
    """The target encoder of release `name` (see the module docstring); `pretrained=False`
    builds the same architecture freshly initialised."""
    from sparsejepa.release import load
    from sparsejepa.vit import Encoder

    r = load(name, device=device, **kwargs)
    encoder = r.encoder
    if not pretrained:
        encoder = Encoder.from_config(r.config.model).to(device).eval()
    encoder.transform, encoder.release = r.transform, r
    encoder.mean, encoder.std, encoder.img_size = r.mean, r.std, r.img_size
    return encoder


def _entry(name: str):
    def entry(pretrained: bool = True, device: str = "cpu", **kwargs):
        return release(name, pretrained=pretrained, device=device, **kwargs)

    entry.__name__ = entry.__qualname__ = name.replace(".", "_")
    entry.__doc__ = f"The target encoder of release {name!r} (torch.hub; see hubconf.py)."
    return entry


def _register() -> None:
    from sparsejepa.release import releases

    for name in releases():
        globals()[name.replace(".", "_")] = _entry(name)


_register()

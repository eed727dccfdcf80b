"""SparseJEPA: I-JEPA with an oi-VAE group-sparse head, on CIFAR-100 and an offline shapes set."""

from .version import __version__

__all__ = ["__version__", "load"]


def load(name_or_path, *, directory=None, device="cpu"):
    """A released encoder: `sparsejepa.load("sparsejepa_s0")` or a path to its .safetensors file.

    Returns a `sparsejepa.release.Release` (encoder in eval mode, config, probe results, group
    matrix, training history); verifies sha256 and config, never unpickles. See `release.load`.
    """
    from .release import load as load_release

    return load_release(name_or_path, directory=directory, device=device)

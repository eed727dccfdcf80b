"""SparseJEPA: I-JEPA with an oi-VAE group-sparse head, on CIFAR-100 and an offline shapes set."""

__version__ = "0.1.0"

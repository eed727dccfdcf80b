"""The package version (a leaf module: checkpoints and the CLI record it without importing the
package root)."""

__version__ = "0.1.0"

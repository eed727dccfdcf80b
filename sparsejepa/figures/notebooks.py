"""Running the numbered notebooks headless (`sparsejepa figures`, `make figures`, the tests)."""

from __future__ import annotations

import os
from pathlib import Path

from ..output import ENV_FIGURES


def notebook_paths(folder: str | Path | None = None) -> list[Path]:
    """notebooks/NN_*.ipynb in order (every numbered notebook, not only 01-07)."""
    folder = Path(folder) if folder else Path(__file__).resolve().parents[2] / "notebooks"
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


class NotebookError(RuntimeError):
    """One or more notebooks failed; the message names each with its error."""


def run_notebooks(
    paths: list[Path],
    checkpoints: str | Path | None = None,
    figures: str | Path | None = None,
    timeout: int = 1800,
    extra_env: dict[str, str] | None = None,
) -> dict[str, float]:
    """Execute notebooks headless with nbclient, each in a fresh kernel (outputs are not written
    back, so the committed notebooks stay stripped); env SPARSEJEPA_CHECKPOINTS /
    SPARSEJEPA_FIGURES point them at the releases and the output folder. Every notebook runs even
    when one fails; then NotebookError names each failure with nbclient's cell and traceback.
    Returns {notebook: seconds}."""
    import time

    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    env = dict(extra_env or {})
    if checkpoints is not None:
        env["SPARSEJEPA_CHECKPOINTS"] = str(Path(checkpoints).resolve())
    if figures is not None:
        env[ENV_FIGURES] = str(Path(figures).resolve())
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    timings, failures = {}, {}
    try:
        for path in paths:
            notebook = nbformat.read(path, as_version=4)
            client = NotebookClient(
                notebook,
                timeout=timeout,
                kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
            )
            tic = time.perf_counter()
            try:
                client.execute()
            except CellExecutionError as err:
                failures[path.name] = str(err)
            timings[path.name] = time.perf_counter() - tic
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if failures:
        details = "\n\n".join(f"=== {name} ===\n{text}" for name, text in failures.items())
        raise NotebookError(
            f"{len(failures)} of {len(paths)} notebooks failed: {sorted(failures)}\n\n{details}"
        )
    return timings

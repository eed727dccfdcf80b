"""Figure builders produce the panels and the data the paper-style figure claims."""

import io

import numpy as np

from theory.linear_jepa.plots import plot_critical_time_ratio, plot_trajectories


def test_trajectory_figure_layout_and_normalisation():
    fig = plot_trajectories(depths=(1, 3), n_times=50)
    axes = fig.get_axes()
    assert len(axes) == 2 * 4  # 2 depths x (2 feature sets x JEPA/MAE)
    for ax in axes:
        lines = ax.get_lines()
        assert len(lines) == 4
        final = [line.get_ydata()[-1] for line in lines]
        np.testing.assert_allclose(final, 1.0, atol=0.02)  # every feature reaches its fixed point


def test_critical_time_figure_shows_jepa_inversion_only():
    fig = plot_critical_time_ratio(max_depth=5)
    left, right = fig.get_axes()
    jepa_ratio, mae_ratio = (line.get_ydata() for line in left.get_lines())
    assert np.all(np.diff(jepa_ratio) > 0) and np.all(np.abs(mae_ratio[1:] - 1) < 0.05)
    curves = [line for line in right.get_lines() if len(line.get_xdata()) > 2]  # not the y=1 line
    jepa_pair, mae_pair = (line.get_ydata() for line in curves)
    assert jepa_pair[0] < 1 < jepa_pair[-1] and np.all(np.asarray(mae_pair) < 1)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    assert buffer.getvalue()[:4] == b"\x89PNG"

"""Figures: files that are valid PNG/PDF, log scales where values span decades, lines, and errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from rpbench.errors import UsageError
from rpbench.plot import make_figure, plot_metric
from rpbench.report import interval
from tests.conftest import shared_run

GAUSSIAN = ["-t", "gaussian", "-e", "score,pathwise,score+delta,score+ma:decay=0.5,0.9", "-p", "fn=quadratic,step"]
GAUSSIAN += ["-p", "sigma=0.1,1,10", "-p", "k=0.5", "-K", "100", "--repeats", "1"]  # the run test_report.py uses
DISCRETE = ["-t", "discrete-vae", "-p", "latents=2", "-p", "categories=3", "-p", "minibatch=2", "-p", "hidden=4"]
DISCRETE += ["-e", "gumbel:tau=0.1,1,10,st-gumbel:tau=0.1,1,10", "-K", "100", "--repeats", "1"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 300_000


@pytest.fixture(scope="module")
def gaussian(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return shared_run(tmp_path_factory, GAUSSIAN)


@pytest.fixture(scope="module")
def discrete(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return shared_run(tmp_path_factory, DISCRETE)


def test_png_and_pdf_files(gaussian: pd.DataFrame, tmp_path: Path) -> None:
    quadratic = gaussian[gaussian["fn"] == "quadratic"]
    png = plot_metric(quadratic, "sigma", "variance", tmp_path / "figs" / "variance.png")
    pdf = plot_metric(quadratic, "sigma", "mse", tmp_path / "mse.PDF", group="mu")
    assert png == tmp_path / "figs" / "variance.png" and pdf == tmp_path / "mse.PDF"
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.read_bytes().rstrip().endswith(b"%%EOF")
    for path in (png, pdf):
        assert 5_000 < path.stat().st_size < MAX_BYTES
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["mse.PDF", "variance.png"]  # no temp files


def test_variance_against_sigma_is_log_log(gaussian: pd.DataFrame) -> None:
    fig = make_figure(gaussian, "sigma", "variance")
    axes = fig.axes
    assert len(axes) == 2 * 2  # fn rows × group columns
    assert [ax.get_title() for ax in axes[:2]] == ["group mu, fn=quadratic", "group sigma, fn=quadratic"]
    assert all(ax.get_xscale() == "log" for ax in axes)  # sigma = 0.1 … 10
    quadratic = axes[:2]  # score's variance grows like sigma² (mu) and sigma⁴ (sigma): many decades
    assert all(ax.get_yscale() == "log" for ax in quadratic)
    labels = [line.get_label() for line in quadratic[0].get_lines()]
    assert labels == ["score", "pathwise", "score+delta", "score+ma (decay=0.5)", "score+ma (decay=0.9)"]
    assert all(line.get_linestyle() == "-" for line in quadratic[0].get_lines())  # none biased by construction
    assert "gaussian: dim=1, mu=1, k=0.5" in fig.get_suptitle()


def test_a_narrow_linear_range_stays_linear(gaussian: pd.DataFrame) -> None:
    fig = make_figure(gaussian[gaussian["sigma"] > 0.5], "sigma", "kurtosis", group="mu")
    assert [ax.get_xscale() for ax in fig.axes] == ["linear", "linear"]  # sigma 1 … 10: one decade
    assert [ax.get_yscale() for ax in fig.axes] == ["linear", "linear"]  # kurtosis of a few to a few tens


def test_bias_and_variance_against_tau(discrete: pd.DataFrame) -> None:
    variance = make_figure(discrete, "tau", "variance")
    bias = make_figure(discrete, "tau", "bias")
    for fig in (variance, bias):
        assert [ax.get_title() for ax in fig.axes] == ["group encoder", "group decoder"]
        assert all(ax.get_xscale() == "log" for ax in fig.axes)  # tau = 0.1 … 10
        for ax in fig.axes:
            lines = ax.get_lines()
            assert [line.get_label() for line in lines] == ["gumbel", "st-gumbel"]  # tau is the x axis
            assert all(line.get_linestyle() == "--" for line in lines)  # biased by construction
            assert all(list(line.get_xdata()) == [0.1, 1.0, 10.0] for line in lines)
    encoder = variance.axes[0]
    assert encoder.get_yscale() == "log"  # the encoder's variance falls by decades as tau grows
    for line in bias.axes[0].get_lines():
        assert min(line.get_ydata()) >= 0  # |bias|
    assert bias.axes[0].get_ylabel() == "|bias|"


def test_bias_interval_of_the_absolute_value() -> None:
    frame = pd.DataFrame({"bias": [-0.5, 0.1, 0.3], "bias_lo": [-0.7, -0.2, 0.2], "bias_hi": [-0.3, 0.4, 0.4]})
    assert interval(frame, "bias")[0].tolist() == [-0.5, 0.1, 0.3]  # signed, as the tables show it
    value, lo, hi = interval(frame, "bias", absolute=True)
    assert value.tolist() == [0.5, 0.1, 0.3]
    assert lo.tolist() == [0.3, 0.0, 0.2] and hi.tolist() == [0.7, 0.4, 0.4]


@pytest.mark.parametrize(
    ("x", "out", "message"),
    [
        ("sigma", "figure.svg", r"unknown figure format '\.svg'; valid: \.png, \.pdf"),
        ("sigma", "figure", r"unknown figure format '\(none\)'"),
        ("color", "figure.png", r"x 'color' is not a column in these results; parameters that vary: sigma, fn, decay"),
        ("mu", "figure.png", r"x 'mu' is constant in these results; parameters that vary: sigma, fn, decay"),
        ("variance", "figure.png", r"x 'variance' is not a parameter in these results"),
    ],
)
def test_bad_arguments_are_usage_errors(gaussian: pd.DataFrame, tmp_path: Path, x: str, out: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        plot_metric(gaussian, x, "variance", tmp_path / out)
    assert list(tmp_path.iterdir()) == []


def test_bad_metric_and_group(gaussian: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown metric 'speed'; valid choices: variance"):
        plot_metric(gaussian, "sigma", "speed", tmp_path / "f.png")
    with pytest.raises(UsageError, match=r"group 'nu' is not in these results; groups: mu, sigma"):
        plot_metric(gaussian, "sigma", "variance", tmp_path / "f.png", group="nu")


def test_unwritable_paths_are_usage_errors(gaussian: pd.DataFrame, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(UsageError, match=r"cannot create its folder"):
        plot_metric(gaussian, "sigma", "variance", blocker / "figure.png")
    (tmp_path / "taken.png").mkdir()
    with pytest.raises(UsageError, match=r"taken\.png: cannot write the figure there \(is a folder\)"):
        plot_metric(gaussian, "sigma", "variance", tmp_path / "taken.png")


def test_a_figure_is_replaced_whole(gaussian: pd.DataFrame, tmp_path: Path) -> None:
    out = tmp_path / "f.png"
    out.write_bytes(b"old")
    plot_metric(gaussian[gaussian["fn"] == "step"], "sigma", "snr", out, group="sigma")
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]

"""Figures of a run: files that are valid PNG/PDF, log scales where values span decades, lines, and errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure

from rpbench.errors import UsageError
from rpbench.views.loader import Run, load_run
from rpbench.views.plot import check_output, plot_figure, save_figure
from rpbench.views.report_layout import interval
from tests.views.training import rows as training_rows
from tests.views.training import write_training_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 300_000


@pytest.fixture
def gaussian(gaussian_run: Run) -> Run:
    return gaussian_run


@pytest.fixture
def discrete(discrete_run: Run) -> Run:
    return discrete_run


def rows(run: Run, keep: pd.Series) -> Run:
    """The run with only the rows where ``keep`` holds."""
    return run.with_results(run.results[keep])


def plot_metric(run: Run, x: str, metric: str, out: Path, group: str | None = None) -> Path:
    """What ``rpbench plot`` does: check the path, draw, save."""
    check_output(out)
    return save_figure(plot_figure(run, x, metric, group), out)


def test_png_and_pdf_files(gaussian: Run, tmp_path: Path) -> None:
    quadratic = rows(gaussian, gaussian.results["fn"] == "quadratic")
    png = plot_metric(quadratic, "sigma", "variance", tmp_path / "figs" / "variance.png")
    pdf = plot_metric(quadratic, "sigma", "mse", tmp_path / "mse.PDF", group="mu")
    assert png == tmp_path / "figs" / "variance.png" and pdf == tmp_path / "mse.PDF"
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.read_bytes().rstrip().endswith(b"%%EOF")
    for path in (png, pdf):
        assert 5_000 < path.stat().st_size < MAX_BYTES
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["mse.PDF", "variance.png"]  # no temp files


def test_variance_against_sigma_is_log_log(gaussian: Run) -> None:
    fig = plot_figure(gaussian, "sigma", "variance")
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


def test_a_narrow_linear_range_stays_linear(gaussian: Run) -> None:
    fig = plot_figure(rows(gaussian, gaussian.results["sigma"] > 0.5), "sigma", "kurtosis", group="mu")
    assert [ax.get_xscale() for ax in fig.axes] == ["linear", "linear"]  # sigma 1 … 10: one decade
    assert [ax.get_yscale() for ax in fig.axes] == ["linear", "linear"]  # kurtosis of a few to a few tens


def test_bias_and_variance_against_tau(discrete: Run) -> None:
    variance = plot_figure(discrete, "tau", "variance")
    bias = plot_figure(discrete, "tau", "bias")
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
def test_bad_arguments_are_usage_errors(gaussian: Run, tmp_path: Path, x: str, out: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        plot_metric(gaussian, x, "variance", tmp_path / out)
    assert list(tmp_path.iterdir()) == []


def test_bad_metric_and_group(gaussian: Run, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown metric 'speed'; valid choices: variance"):
        plot_metric(gaussian, "sigma", "speed", tmp_path / "f.png")
    with pytest.raises(UsageError, match=r"group 'nu' is not in these results; groups: mu, sigma"):
        plot_metric(gaussian, "sigma", "variance", tmp_path / "f.png", group="nu")


def test_unwritable_paths_are_usage_errors(gaussian: Run, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(UsageError, match=r"cannot create its folder"):
        plot_metric(gaussian, "sigma", "variance", blocker / "figure.png")
    (tmp_path / "taken.png").mkdir()
    with pytest.raises(UsageError, match=r"taken\.png: cannot write the figure there \(is a folder\)"):
        plot_metric(gaussian, "sigma", "variance", tmp_path / "taken.png")


def test_a_figure_is_replaced_whole(gaussian: Run, tmp_path: Path) -> None:
    out = tmp_path / "f.png"
    out.write_bytes(b"old")
    plot_metric(rows(gaussian, gaussian.results["fn"] == "step"), "sigma", "snr", out, group="sigma")
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]


def test_save_figure_checks_the_path_itself(gaussian: Run, tmp_path: Path) -> None:
    figure = plot_figure(gaussian, "sigma", "variance", group="mu")
    assert isinstance(figure, Figure)
    with pytest.raises(UsageError, match=r"unknown figure format '\.svg'"):
        save_figure(figure, tmp_path / "f.svg")
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(UsageError, match=r"cannot create its folder"):
        save_figure(figure, tmp_path / "a-file" / "f.png")
    assert save_figure(figure, tmp_path / "deep" / "f.pdf").read_bytes()[:5] == b"%PDF-"


def test_legend_labels_are_the_report_rows(gaussian: Run) -> None:
    figure = plot_figure(gaussian, "sigma", "variance")
    (legend,) = figure.legends
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == ["score", "pathwise", "score+delta", "score+ma (decay=0.5)", "score+ma (decay=0.9)"]


# --------------------------------------------------------------------------- training runs: learning curves


def test_learning_curves_one_line_per_estimator_with_bands(training_run: Run, tmp_path: Path) -> None:
    fig = plot_figure(training_run)  # a training run's defaults: eval_elbo against step
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["score", "pathwise"]
    score = lines[0]
    assert list(score.get_xdata()) == [0, 10, 20] and list(score.get_ydata()) == pytest.approx([-122.0, -112.0, -102.0])
    assert len(ax.collections) == 2  # a t-interval band per line
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.max() == pytest.approx(-102.0 + 4.302652729911275 * 2 / 3**0.5)
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "eval_elbo"
    title = fig.get_suptitle()
    assert "eval_elbo vs step: mean over 3 seeds; 1 failed run left out" in title and "lr=0.001" in title
    png = plot_metric(training_run, "seconds", "eval_iwae", tmp_path / "curves.png")
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_learning_curves_against_seconds_use_the_mean_over_seeds(training_run: Run) -> None:
    fig = plot_figure(training_run, x="seconds", metric="train_elbo")
    (ax,) = fig.axes
    pathwise = ax.get_lines()[1]
    assert list(pathwise.get_xdata()) == pytest.approx([0.1, 5.1, 10.1])  # steps 0, 10, 20 at step/2 + seed/10
    assert list(pathwise.get_ydata()) == pytest.approx([-113.0, -103.0, -93.0])
    assert ax.get_xlabel() == "training seconds (mean over seeds)"


def test_one_panel_per_task_configuration_and_no_band_for_one_seed(tmp_path: Path) -> None:
    run = load_run(write_training_run(tmp_path / "run", training_rows(latents=(2, 4))))
    fig = plot_figure(run, "step", "eval_elbo")
    assert [ax.get_title() for ax in fig.axes] == ["latents=2", "latents=4"]
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 2]
    one = plot_figure(run.where(["seed=2"]))
    assert all(len(ax.collections) == 0 for ax in one.axes) and "mean over 1 seed" in one.get_suptitle()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": "sigma"}, r"unknown x 'sigma'; valid choices: step, seconds$"),
        (
            {"metric": "variance"},
            r"unknown metric 'variance'; valid choices: train_elbo, eval_elbo, eval_elbo_se, eval_iwae$",
        ),
        ({"group": "mu"}, r"group 'mu': these results have no parameter groups"),
    ],
)
def test_bad_arguments_on_a_training_run(training_run: Run, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message) as error:
        plot_figure(training_run, **kwargs)
    assert "\n" not in str(error.value)


def test_measurement_runs_keep_their_defaults(gaussian: Run) -> None:
    fig = plot_figure(gaussian)
    assert fig.axes[0].get_xlabel() == "" and fig.axes[-1].get_xlabel() == "sigma"
    assert fig.axes[0].get_ylabel() == "variance" and "variance vs sigma" in fig.get_suptitle()

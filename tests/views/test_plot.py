"""Figures of a run: valid PNG/PDF/SVG files, the grid, one y scale, zeros marked, legend clear of the
panels, TeX labels, size presets, lines, and errors."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import Bbox
from PIL import Image

from rpbench.errors import UsageError
from rpbench.views import plot
from rpbench.views.loader import Run, load_run
from rpbench.views.plot import BELOW_GID, SIZES, check_output, plot_figure, save_figure
from rpbench.views.report_layout import interval
from tests.conftest import exit_code
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


def data_lines(ax: Axes) -> list[Line2D]:
    """A panel's lines of values (not the ▼ markers of values below the axis)."""
    return [line for line in ax.get_lines() if line.get_gid() != BELOW_GID]


def plot_metric(run: Run, x: str, metric: str, out: Path, group: str | None = None) -> Path:
    """What ``rpbench plot`` does: check the path, draw, save."""
    check_output(out)
    return save_figure(plot_figure(run, x, metric, group), out)


def test_png_pdf_and_svg_files(gaussian: Run, tmp_path: Path) -> None:
    quadratic = rows(gaussian, gaussian.results["fn"] == "quadratic")
    png = plot_metric(quadratic, "sigma", "variance", tmp_path / "figs" / "variance.png")
    pdf = plot_metric(quadratic, "sigma", "mse", tmp_path / "mse.PDF", group="mu")
    svg = plot_metric(quadratic, "sigma", "snr", tmp_path / "snr.svg", group="sigma")
    assert png == tmp_path / "figs" / "variance.png" and pdf == tmp_path / "mse.PDF"
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.read_bytes().rstrip().endswith(b"%%EOF")
    assert b"<svg" in svg.read_bytes()[:1000] and svg.read_bytes().rstrip().endswith(b"</svg>")
    for path in (png, pdf, svg):
        assert 5_000 < path.stat().st_size < MAX_BYTES
    names = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert names == ["mse.PDF", "snr.svg", "variance.png"]  # no temp files


def test_variance_against_sigma_is_log_log(gaussian: Run) -> None:
    fig = plot_figure(gaussian, "sigma", "variance")
    axes = fig.axes
    assert len(axes) == 2 * 2  # fn × group panels, a column per group
    titles = [ax.get_title() for ax in axes]
    assert titles == [
        r"$\mu$ gradient, fn=quadratic",
        r"$\sigma$ gradient, fn=quadratic",
        r"$\mu$ gradient, fn=step",
        r"$\sigma$ gradient, fn=step",
    ]
    assert all(ax.get_xscale() == "log" for ax in axes)  # sigma = 0.1 … 10
    assert all(ax.get_yscale() == "log" for ax in axes)  # one scale: score's variance spans decades
    labels = [line.get_label() for line in data_lines(axes[0])]
    assert labels == ["score", "pathwise", "score+delta", "score+ma (decay=0.5)", "score+ma (decay=0.9)"]
    assert all(line.get_linestyle() == "-" for line in data_lines(axes[0]))  # none biased by construction
    assert r"gaussian: dim=1, $\mu$=1, $k$=0.5" in fig.get_suptitle()
    assert r"$K$=100, $n$=1, seed=0" in fig.get_suptitle()


def test_a_narrow_linear_range_stays_linear(gaussian: Run) -> None:
    fig = plot_figure(rows(gaussian, gaussian.results["sigma"] > 0.5), "sigma", "kurtosis", group="mu")
    assert [ax.get_xscale() for ax in fig.axes] == ["linear", "linear"]  # sigma 1 … 10: one decade
    assert [ax.get_yscale() for ax in fig.axes] == ["linear", "linear"]  # kurtosis of a few to a few tens


def test_bias_and_variance_against_tau(discrete: Run) -> None:
    variance = plot_figure(discrete, "tau", "variance")
    bias = plot_figure(discrete, "tau", "bias")
    for fig in (variance, bias):
        assert [ax.get_title() for ax in fig.axes] == ["encoder gradient", "decoder gradient"]
        assert all(ax.get_xscale() == "log" for ax in fig.axes)  # tau = 0.1 … 10
        for ax in fig.axes:
            lines = data_lines(ax)
            assert [line.get_label() for line in lines] == ["gumbel", "st-gumbel"]  # tau is the x axis
            assert all(line.get_linestyle() == "--" for line in lines)  # biased by construction
            assert all(list(line.get_xdata()) == [0.1, 1.0, 10.0] for line in lines)
    assert variance.axes[0].get_yscale() == "log"  # the encoder's variance falls by decades as tau grows
    for line in bias.axes[0].get_lines():
        assert min(line.get_ydata()) >= 0  # |bias|
    assert bias.axes[0].get_ylabel() == r"$|\mathrm{bias}|$"


def test_bias_interval_of_the_absolute_value() -> None:
    frame = pd.DataFrame({"bias": [-0.5, 0.1, 0.3], "bias_lo": [-0.7, -0.2, 0.2], "bias_hi": [-0.3, 0.4, 0.4]})
    assert interval(frame, "bias")[0].tolist() == [-0.5, 0.1, 0.3]  # signed, as the tables show it
    value, lo, hi = interval(frame, "bias", absolute=True)
    assert value.tolist() == [0.5, 0.1, 0.3]
    assert lo.tolist() == [0.3, 0.0, 0.2] and hi.tolist() == [0.7, 0.4, 0.4]


@pytest.mark.parametrize(
    ("x", "out", "message"),
    [
        ("sigma", "figure.gif", r"unknown figure format '\.gif'; valid: \.png, \.pdf, \.svg"),
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
    with pytest.raises(UsageError, match=r"unknown figure format '\.eps'"):
        save_figure(figure, tmp_path / "f.eps")
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(UsageError, match=r"cannot create its folder"):
        save_figure(figure, tmp_path / "a-file" / "f.png")
    assert save_figure(figure, tmp_path / "deep" / "f.pdf").read_bytes()[:5] == b"%PDF-"


def test_legend_labels_are_the_report_rows(gaussian: Run) -> None:
    figure = plot_figure(gaussian, "sigma", "variance")
    (legend,) = figure.legends
    labels = [text.get_text() for text in legend.get_texts()]
    rows = ["score", "pathwise", "score+delta", "score+ma (decay=0.5)", "score+ma (decay=0.9)"]
    assert labels == [*rows, "below the axis (see note)"]  # the report's rows, and the ▼ of a zero


# --------------------------------------------------------------------------- layout: grid, scale, legend, size


def geometry(fig: Figure) -> tuple[int, int]:
    """Rows and columns of the figure's grid of panels."""
    shapes = {ax.get_subplotspec().get_geometry()[:2] for ax in fig.axes}  # type: ignore[union-attr]
    (shape,) = shapes
    return shape


@pytest.mark.parametrize(
    ("cols", "shape", "labelled"),
    [
        (None, (2, 2), [False, False, True, True]),  # a column per parameter group
        (1, (4, 1), [False, False, False, True]),
        (3, (2, 3), [False, True, True, True]),  # the 2nd and 3rd panel have none below: they show x
        (99, (1, 4), [True, True, True, True]),  # no more columns than panels
    ],
)
def test_grid_of_panels(gaussian: Run, cols: int | None, shape: tuple[int, int], labelled: list[bool]) -> None:
    fig = plot_figure(gaussian, "sigma", "variance", cols=cols)
    assert len(fig.axes) == 4 and geometry(fig) == shape
    assert [ax.xaxis.get_tick_params()["labelbottom"] for ax in fig.axes] == labelled
    assert [ax.get_xlabel() == r"$\sigma$" for ax in fig.axes] == labelled
    assert [bool(ax.get_ylabel()) for ax in fig.axes] == [k % shape[1] == 0 for k in range(4)]
    first = fig.axes[0]
    assert all(first.get_shared_x_axes().joined(first, ax) for ax in fig.axes)
    assert all(first.get_shared_y_axes().joined(first, ax) for ax in fig.axes)


def test_default_columns_without_groups(gaussian: Run) -> None:
    one_group = plot_figure(gaussian, "sigma", "variance", group="mu")  # 2 panels (fn)
    assert geometry(one_group) == (1, 2)
    many = plot_figure(gaussian, "fn", "variance", group="mu")  # 3 panels (sigma), categories on x
    assert geometry(many) == (1, 3) and [t.get_text() for t in many.axes[0].get_xticklabels()] == ["quadratic", "step"]
    assert geometry(plot_figure(gaussian, "fn", "variance", group="mu", size="one-column")) == (2, 2)


@pytest.mark.parametrize("yscale", ["log", "linear", "symlog"])
def test_one_y_scale_for_every_panel(gaussian: Run, yscale: str) -> None:
    fig = plot_figure(gaussian, "sigma", "variance", yscale=yscale)
    assert {ax.get_yscale() for ax in fig.axes} == {yscale}
    assert len({ax.get_ylim() for ax in fig.axes}) == 1  # shared: panels compare at a glance
    assert ("Symlog axis: linear within" in fig.get_suptitle()) == (yscale == "symlog")


def test_auto_is_one_choice_for_the_figure(gaussian: Run) -> None:
    """Per panel, step's variances (a decade or so) would be linear and quadratic's log: one scale wins."""
    fig = plot_figure(rows(gaussian, gaussian.results["estimator"] != "pathwise"), "sigma", "variance", group="mu")
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log"]


def test_round_off_does_not_stretch_a_log_axis(gaussian: Run) -> None:
    fig = plot_figure(gaussian, "sigma", "variance", group="mu")
    top = max(v for ax in fig.axes for line in ax.get_lines() for v in line.get_ydata() if v == v)
    bottom, _ = fig.axes[0].get_ylim()
    assert bottom > top * 1e-12


def marked(fig: Figure, colour: object) -> list[tuple[int, list[float]]]:
    """The panels (their index) with ▼ markers at the bottom edge in ``colour``, and the markers' x."""
    fig.canvas.draw()  # type: ignore[no-untyped-call]
    found = []
    for k, ax in enumerate(fig.axes):
        bottom = ax.get_window_extent().y0
        for line in ax.get_lines():
            if line.get_marker() != "v" or line.get_color() != colour:
                continue
            points = line.get_transform().transform(line.get_xydata())
            if all(0 <= y - bottom < 0.15 * ax.get_window_extent().height for y in points[:, 1]):
                found.append((k, [float(x) for x in line.get_xdata()]))
    return found


def pathwise_colour(fig: Figure) -> object:
    (line,) = [line for line in fig.axes[0].get_lines() if line.get_label() == "pathwise"]
    return line.get_color()


def test_zeros_are_marked_at_the_edge_and_named(gaussian: Run) -> None:
    frame = gaussian.results
    step = (frame["fn"] == "step") & (frame["estimator"] == "pathwise")
    assert (frame.loc[step, "variance"] == 0).all()  # the step function's pathwise gradient is exactly 0
    FigureCanvasAgg(fig := plot_figure(gaussian, "sigma", "variance", group="mu"))
    assert fig.axes[1].get_title() == "fn=step"
    assert marked(fig, pathwise_colour(fig)) == [(1, [0.1, 1.0, 10.0])]  # every sigma, in the step panel
    note = fig.get_suptitle()
    assert "▼ on the bottom edge: exact zero: pathwise (fn=step)" in note
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[-1] == "below the axis (see note)"


def test_the_note_says_where_briefly(gaussian: Run) -> None:
    """Below the axis in both step panels: named by what they share; at one point only: that point."""
    frame = gaussian.results.copy()
    one = (frame["estimator"] == "score") & (frame["fn"] == "quadratic") & (frame["group"] == "mu")
    frame.loc[one & (frame["sigma"] == 0.1), "variance"] = 0.0
    ma = (frame["estimator"] == "score+ma") & (frame["decay"] == 0.5) & (frame["fn"] == "step")
    frame.loc[ma, "variance"] = frame.loc[ma, "variance"].where(frame.loc[ma, "sigma"] != 0.1, 0.0)
    frame.loc[ma & (frame["sigma"] != 0.1), "variance"] = 1.0  # above the axis, whatever the draws
    fig = plot_figure(gaussian.with_results(frame), "sigma", "variance")
    note = " ".join(fig.get_suptitle().split())  # unwrapped
    assert r"exact zero: score ($\mu$ gradient, fn=quadratic, at $\sigma$=0.1), pathwise (fn=step)," in note
    assert r"score+ma (decay=0.5) (fn=step, at $\sigma$=0.1);" in note  # both groups' step panels, one point


@pytest.mark.parametrize(
    ("cols", "panels", "size", "groups", "expected"),
    [
        (None, 8, "default", 1, 3),
        (None, 16, "default", 2, 4),  # 4 rows of 4 rather than 6 of 3 (or 8 of 2)
        (None, 6, "default", 2, 2),  # a column per group
        (None, 2, "default", 1, 2),
        (None, 8, "one-column", 1, 2),
        (5, 3, "default", 1, 3),
    ],
)
def test_default_columns(cols: int | None, panels: int, size: str, groups: int, expected: int) -> None:
    assert plot._grid_cols(cols, panels, size, groups) == expected


def test_the_old_behaviour_fails_the_zero_check(gaussian: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the marker (the old figure: a zero left off a log axis without a word) the checks above fail."""
    monkeypatch.setattr(plot, "_mark_below", lambda *args: None)
    FigureCanvasAgg(fig := plot_figure(gaussian, "sigma", "variance", group="mu"))
    assert marked(fig, pathwise_colour(fig)) == []
    assert "exact zero" not in fig.get_suptitle()


def test_zeros_on_a_linear_axis_are_drawn_at_zero(gaussian: Run) -> None:
    fig = plot_figure(gaussian, "sigma", "variance", group="mu", yscale="linear")
    (line,) = [line for line in fig.axes[1].get_lines() if line.get_label() == "pathwise"]
    assert list(line.get_ydata()) == [0.0, 0.0, 0.0]
    assert not [line for ax in fig.axes for line in ax.get_lines() if line.get_gid() == BELOW_GID]


def overlaps(a: Bbox, b: Bbox) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("size", list(SIZES))
def test_legend_and_title_stay_clear_of_the_panels(gaussian: Run, training_run: Run, size: str) -> None:
    for fig in (plot_figure(gaussian, "sigma", "variance", size=size), plot_figure(training_run, size=size)):
        FigureCanvasAgg(fig)
        fig.canvas.draw()  # type: ignore[no-untyped-call]
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        (legend,) = fig.legends
        boxes = {"legend": legend.get_window_extent(renderer), "title": fig._suptitle.get_window_extent(renderer)}  # type: ignore[union-attr]
        boxes |= {f"panel {k}": ax.get_tightbbox(renderer) for k, ax in enumerate(fig.axes)}
        page = fig.bbox
        for name, box in boxes.items():
            assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, name
        names = list(boxes)
        clashes = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :] if overlaps(boxes[a], boxes[b])]
        assert clashes == []
        assert boxes["legend"].y1 <= min(ax.get_window_extent().y0 for ax in fig.axes)  # below the grid


def test_tex_labels(gaussian: Run, discrete: Run) -> None:
    fig = plot_figure(gaussian, "sigma", "snr", group="mu")
    assert fig.axes[0].get_xlabel() == r"$\sigma$" and fig.axes[0].get_ylabel() == r"$\mathrm{SNR}$"
    assert fig.get_suptitle().startswith(r"$\mathrm{SNR}$ of the $\mu$ gradient vs $\sigma$")
    tau = plot_figure(discrete, "tau", "variance", group="encoder")
    assert tau.axes[0].get_xlabel() == r"$\tau$" and tau.get_suptitle().startswith(r"$\mathrm{Var}$ of the encoder")
    FigureCanvasAgg(fig)
    fig.canvas.draw()  # type: ignore[no-untyped-call]  # mathtext parses (no LaTeX needed)
    shown = fig.axes[0].xaxis.label.get_window_extent()
    assert shown.width < 3 * shown.height  # one Greek letter, not the 8 characters of '$\sigma$'


@pytest.mark.parametrize(("size", "width"), [("one-column", 3.25), ("two-column", 6.75), ("default", 3.8 * 2 + 0.7)])
def test_size_presets(gaussian: Run, tmp_path: Path, size: str, width: float) -> None:
    fig = plot_figure(gaussian, "sigma", "variance", size=size)
    assert fig.get_figwidth() == pytest.approx(width)
    taller = plot_figure(gaussian, "sigma", "variance", size=size, cols=1)  # 4 rows instead of 2
    narrow = 3.8 + 0.7 if size == "default" else width  # the default: 3.8 in a column
    assert taller.get_figwidth() == pytest.approx(narrow) and taller.get_figheight() > fig.get_figheight()
    pdf = save_figure(fig, tmp_path / "f.pdf").read_bytes()
    (box,) = re.findall(rb"/MediaBox \[ *0 0 ([\d.]+) ([\d.]+) *\]", pdf)
    assert float(box[0]) == pytest.approx(width * 72)
    png = Image.open(save_figure(fig, tmp_path / "f.png"))
    assert png.size[0] == round(width * SIZES[size].dpi)


def test_variance_against_the_batch_size(gaussian: Run) -> None:
    """``--x batch`` (and ``n``): the 1/n law as a straight line on log-log axes, ticked at each n."""
    one = gaussian.results[(gaussian.results["fn"] == "quadratic") & (gaussian.results["sigma"] == 1)]
    copies = []
    for n in (1, 2, 4, 8):
        scaled = {c: one[c] / n for c in ("variance", "variance_lo", "variance_hi")}
        copies.append(one.assign(batch=n, **scaled))
    run = gaussian.with_results(pd.concat(copies, ignore_index=True))
    for x in ("batch", "n"):
        fig = plot_figure(run, x, "variance", group="mu")
        (ax,) = fig.axes
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log" and ax.get_xlabel() == "$n$"
        assert list(ax.get_xticks()) == [1, 2, 4, 8]
        (score,) = [line for line in ax.get_lines() if line.get_label() == "score"]
        assert list(score.get_xdata()) == [1, 2, 4, 8]
        assert "$n$=" not in fig.get_suptitle() and "$K$=100" in fig.get_suptitle()
    samples = gaussian.with_results(pd.concat([one.assign(samples=k) for k in (100, 1000)], ignore_index=True))
    assert plot_figure(samples, "samples", "variance", group="mu").axes[0].get_xlabel() == "$K$"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--cols", "0"], "cols 0: expected a whole number of columns >= 1"),
        (["--cols", "two"], "Invalid value for '--cols'"),
        (["--yscale", "cubic"], "unknown yscale 'cubic'; valid choices: auto, log, linear, symlog"),
        (["--size", "a4"], "unknown size 'a4'; valid choices: default, two-column, one-column"),
        (["-o", "{out}/figure.gif"], r"unknown figure format '.gif'; valid: .png, .pdf, .svg"),
        (["--yscale", "log", "--metric", "mean", "--group", "mu"], "yscale 'log': no positive value"),  # all < 0
    ],
)
def test_bad_options_exit_2_with_one_line(
    tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    out = tmp_path / "figs"
    args = [a.format(out=out) for a in options]
    if "-o" not in args:
        args += ["-o", str(out / "figure.png")]
    capsys.readouterr()
    assert exit_code(["plot", str(tiny_dir), "--x", "k", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not out.exists()  # nothing written, not even the folder


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
    assert fig.axes[0].get_xlabel() == "" and fig.axes[-1].get_xlabel() == r"$\sigma$"
    assert fig.axes[0].get_ylabel() == r"$\mathrm{Var}$" and r"$\mathrm{Var}$ vs $\sigma$" in fig.get_suptitle()


def test_the_plot_command_takes_the_options(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "figs" / "figure.pdf"
    options = ["--cols", "1", "--yscale", "symlog", "--size", "one-column", "--metric", "mean"]
    assert exit_code(["plot", str(tiny_dir), "--x", "k", *options, "-o", str(out)]) == 0
    assert out.read_bytes()[:5] == b"%PDF-"


def test_an_equal_cost_run_draws_each_estimator_at_its_own_n_in_one_panel_per_group(equal_cost_run: Run) -> None:
    """n is each line's (``mvd (n=1)``), not a panel key; the caption names the budget."""
    fig = plot_figure(equal_cost_run, x="sigma", metric="variance")
    assert len(fig.axes) == 2  # mu and sigma: no panel per n
    labels = [line.get_label() for line in data_lines(fig.axes[0])]
    assert labels == ["score ($n$=8)", "pathwise ($n$=8)", "mvd ($n$=1)"], labels
    assert "equal cost: at most 8 evaluations of f per estimate" in fig.get_suptitle().replace("\n", " ")

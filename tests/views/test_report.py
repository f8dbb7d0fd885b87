"""Publication tables of a run: layout, CI formatting, marks, ratios, LaTeX that compiles, CSV, the frame, errors."""

from __future__ import annotations

import dataclasses
import io
import math
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from rpbench.columns import Column, result_columns
from rpbench.errors import UsageError
from rpbench.views.loader import Run, load_run
from rpbench.views.report import report_frame, report_text
from tests.views.training import rows as training_rows
from tests.views.training import write_training_run

ESTIMATORS = ["score", "pathwise", "score+delta", "score+ma (decay=0.5)", "score+ma (decay=0.9)"]


@pytest.fixture
def gaussian(gaussian_run: Run) -> Run:
    """6 task configurations × 5 estimator configurations (score+delta does not apply to the step)."""
    return gaussian_run


def table_rows(markdown: str) -> list[list[str]]:
    """The cells of each line of the Markdown table (header first, the rule left out)."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    rows = [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    return [rows[0], *rows[2:]]


def number(cell: str) -> float:
    """The leading value of a cell such as ``**3.98 ± 0.56**\\*`` or ``(3.9 ± 1.2)e-5``."""
    text = cell.replace("*", "").replace("\\", "").replace("×", "")
    match = re.fullmatch(r"\(?(-?[\d.]+)(?: ± [\d.]+)?\)?(?:e(-?\d+))?", text)
    assert match, cell
    return float(match.group(1)) * 10 ** int(match.group(2) or 0)


def test_markdown_has_one_row_per_estimator_configuration_and_one_column_per_task_configuration(
    gaussian: Run,
) -> None:
    rows = table_rows(report_text(gaussian))
    assert [r[0] for r in rows[1:]] == ESTIMATORS
    assert len(rows[0]) == 1 + 6 * 2  # (sigma, fn) × group
    assert rows[0][1] == "group=mu, sigma=0.1, fn=quadratic"
    assert all(len(r) == len(rows[0]) for r in rows)


def test_best_cell_of_each_column_is_bold(gaussian: Run) -> None:
    rows = table_rows(report_text(gaussian, "mse", group="sigma", columns=["fn", "sigma"]))
    frame = gaussian.results[gaussian.results["group"] == "sigma"]
    for j, header in enumerate(rows[0][1:], 1):
        settings = dict(part.split("=") for part in header.split(", "))
        block = frame[(frame["fn"] == settings["fn"]) & (frame["sigma"] == float(settings["sigma"]))]
        bold = [r[0] for r in rows[1:] if r[j].startswith("**")]
        best = block.loc[block["mse"] == block["mse"].min(), "estimator"].tolist()
        assert len(bold) == len(best) >= 1
        assert all(label.split(" (")[0] in best for label in bold)


def test_snr_best_is_the_highest(gaussian: Run) -> None:
    rows = table_rows(report_text(gaussian, "snr", group="mu", columns=["fn", "sigma"]))
    for j in range(1, len(rows[0])):
        values = {r[0]: number(r[j]) for r in rows[1:] if r[j] != "–"}
        (bold,) = [r[0] for r in rows[1:] if r[j].startswith("**")]
        assert values[bold] == max(values.values())


def score_record(run: Run) -> pd.Series:
    """The row of score, group mu, fn=quadratic, sigma=1."""
    return run.results.query("estimator == 'score' and group == 'mu' and fn == 'quadratic' and sigma == 1").iloc[0]


def test_markdown_cells_match_the_frame(gaussian: Run) -> None:
    rows = table_rows(report_text(gaussian, "variance", group="mu", columns=["fn", "sigma"]))
    j = rows[0].index("fn=quadratic, sigma=1")
    (row,) = [r for r in rows if r[0] == "score"]
    record = score_record(gaussian)
    assert math.isclose(number(row[j]), record["variance"], rel_tol=0.06)
    assert " ± " in row[j]


def test_scientific_column_uses_a_common_format() -> None:
    frame = hand_run(variance=[3.98e-5, 2.0e-2], lo=[3.86e-5, 1.9e-2], hi=[4.1e-5, 2.2e-2])
    rows = table_rows(report_text(frame))
    assert rows[1][1] == "**(3.98 ± 0.12)e-5**"  # best (lowest) in bold
    assert rows[2][1] == "(2.00 ± 0.20)e-2\\*"  # significantly biased


def test_missing_cells_show_a_dash(gaussian: Run) -> None:
    rows = table_rows(report_text(gaussian, group="mu", columns=["fn", "sigma"]))
    (delta,) = [r for r in rows if r[0] == "score+delta"]
    steps = [j for j, h in enumerate(rows[0]) if "fn=step" in h]
    assert steps and all(delta[j] == "–" for j in steps)
    assert all(delta[j] != "–" for j in range(1, len(rows[0])) if j not in steps)


def test_significant_bias_gets_an_asterisk_and_a_footnote(gaussian: Run) -> None:
    text = report_text(gaussian, group="mu", columns=["fn", "sigma"])
    rows = table_rows(text)
    (pathwise,) = [r for r in rows if r[0] == "pathwise"]
    steps = [j for j, h in enumerate(rows[0]) if "fn=step" in h]
    assert all(pathwise[j].endswith("\\*") for j in steps)  # pathwise is wrong on the step
    assert "\\* bias beyond 4 SE" in text
    assert "†" not in text  # no estimator here is biased by construction


def hand_run(variance: list[float], lo: list[float], hi: list[float], biased: tuple[bool, ...] = (False, False)) -> Run:
    """Two estimators on one task configuration and group, every metric given by hand."""
    n = len(variance)
    metrics = {m: [1.0] * n for m in ("mean", "bias", "variance_per_coord", "mse", "snr", "cosine", "kurtosis")}
    metrics |= {"sec_per_estimate": [1e-5] * n, "work_variance": [1e-5] * n}
    frame = pd.DataFrame(
        {
            "task": "toy",
            "estimator": ["alpha", "beta"][:n],
            "biased": list(biased)[:n],
            "group": "theta",
            "samples": 100,
            "batch": 1,
            "seed": 0,
            "device": "cpu",
            "width": 3,
            "truth": "closed-form",
            "exact_se": 0.0,
            "setup_seconds": 0.0,
            "n_coords": 1,
            "exact": 1.0,
            "bias_significant": [False, True][:n],
            "variance": variance,
            **metrics,
        }
    )
    for name in ("mean", "bias", "variance", "variance_per_coord", "mse", "snr", "cosine"):
        frame[f"{name}_lo"], frame[f"{name}_hi"] = frame[name] * 0.9, frame[name] * 1.1
    frame["variance_lo"], frame["variance_hi"] = lo, hi
    for name in ("sec_per_estimate", "work_variance"):
        frame[f"{name}_lo"], frame[f"{name}_hi"] = math.nan, math.nan
    return Run(frame, meta={"options": {"level": 0.95}}, columns=result_columns([("width", int)], []))


def test_biased_estimators_get_a_dagger_and_a_footnote() -> None:
    frame = hand_run([1.0, 2.0], [0.9, 1.8], [1.1, 2.2], biased=(False, True))
    text = report_text(frame)
    rows = table_rows(text)
    assert [r[0] for r in rows[1:]] == ["alpha", "beta†"]
    assert rows[1][1] == "**1.00 ± 0.10**"
    assert rows[2][1] == "2.00 ± 0.20\\*"
    assert "† biased by construction" in text and "\\* bias beyond 4 SE" in text
    assert "toy: width=3; group theta; K=100, n=1, seed=0, device=cpu" in text


def test_bias_is_signed_and_best_is_smallest_in_absolute_value() -> None:
    run = hand_run([1.0, 2.0], [0.9, 1.8], [1.1, 2.2])
    run = run.with_results(run.results.assign(bias=[-0.05, 0.2], bias_lo=[-0.07, 0.1], bias_hi=[-0.03, 0.3]))
    rows = table_rows(report_text(run, "bias"))
    assert [rows[1][1], rows[2][1]] == ["**-0.050 ± 0.020**", "0.20 ± 0.10\\*"]
    ratios = table_rows(report_text(run, "bias", relative_to="alpha"))
    assert [ratios[1][1], ratios[2][1]] == ["**1×**", "4.00×\\*"]  # ratios of |bias|


def test_relative_to_shows_ratios_with_one_on_the_reference(gaussian: Run) -> None:
    rows = table_rows(report_text(gaussian, "variance", relative_to="pathwise", group="sigma", columns=["fn", "sigma"]))
    (reference,) = [r for r in rows if r[0] == "pathwise"]
    assert all(cell.replace("*", "").replace("\\", "") == "1×" for cell in reference[1:])
    j = rows[0].index("fn=quadratic, sigma=10")
    (score,) = [r for r in rows if r[0] == "score"]
    pick = gaussian.results.query("group == 'sigma' and fn == 'quadratic' and sigma == 10")
    pick = pick.set_index("estimator")["variance"]
    assert score[j].endswith("×")
    assert math.isclose(number(score[j]), pick["score"] / pick["pathwise"], rel_tol=5e-3)


def test_relative_to_a_configuration(gaussian: Run) -> None:
    text = report_text(gaussian, relative_to="score+ma (decay=0.9)", group="mu", columns=["fn", "sigma"])
    (row,) = [r for r in table_rows(text) if r[0] == "score+ma (decay=0.9)"]
    assert all(cell.startswith(("1×", "**1×")) for cell in row[1:])
    with pytest.raises(UsageError, match=r"several configurations.*decay=0\.5"):
        report_text(gaussian, relative_to="score+ma")


def test_latex_is_a_booktabs_tabular(gaussian: Run) -> None:
    text = report_text(gaussian, "bias", fmt="latex")
    for part in (r"\begin{tabular}{l" + "r" * 12 + "}", r"\toprule", r"\midrule", r"\bottomrule", r"\end{tabular}"):
        assert part in text
    assert text.isascii()
    assert r"\boldmath" in text and r"\pm" in text and r"\textsuperscript{*}" in text
    assert r"\multicolumn{6}{c}{mu}" in text and r"\cmidrule(lr){2-7}" in text
    assert "score+ma (decay=0.5)" in text and "--" in text


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_compiles(gaussian: Run, tmp_path: Path) -> None:
    frame = gaussian.results
    marked = frame.assign(biased=frame["estimator"] == "score+ma", estimator=frame["estimator"] + "_x")
    biased = gaussian.with_results(marked)
    tables = [
        report_text(gaussian, "variance", fmt="latex"),
        report_text(biased, "mse", fmt="latex", relative_to="pathwise_x"),
        report_text(hand_run([3.98e-5, 2e-2], [3.9e-5, 1.9e-2], [4.1e-5, 2.1e-2], (True, False)), fmt="latex"),
    ]
    assert r"pathwise\_x" in tables[1] and r"\textsuperscript{\dag}" in tables[1]
    document = "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n\\tiny\n"
    (tmp_path / "t.tex").write_text(document + "\n\n".join(tables) + "\\end{document}\n", encoding="ascii")
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "t.pdf").stat().st_size > 0


def test_csv_is_a_numeric_pivot(gaussian: Run) -> None:
    table = pd.read_csv(io.StringIO(report_text(gaussian, "variance", fmt="csv")))
    assert table["estimator"].tolist() == ESTIMATORS
    column = "variance[group=mu;sigma=1;fn=quadratic]"
    for name in (column, column.replace("variance", "variance_lo"), column.replace("variance", "variance_hi")):
        assert pd.api.types.is_float_dtype(table[name])
    record = score_record(gaussian)
    assert table.loc[table["estimator"] == "score", column].item() == record["variance"]
    assert table.loc[table["estimator"] == "score+delta", "variance[group=mu;sigma=1;fn=step]"].isna().all()


def test_csv_relative(gaussian: Run) -> None:
    table = pd.read_csv(io.StringIO(report_text(gaussian, "mse", fmt="csv", relative_to="score")))
    ratios = table.filter(like="mse_ratio[")
    assert ratios.shape[1] == 12
    assert (ratios[table["estimator"] == "score"] == 1.0).all().all()


def test_columns_choose_the_keys(gaussian: Run) -> None:
    rows = table_rows(report_text(gaussian, group="mu", columns=["sigma", "fn"]))
    assert rows[0][1:3] == ["sigma=0.1, fn=quadratic", "sigma=0.1, fn=step"]
    assert rows[0][-1] == "sigma=10, fn=step"
    per_decay = table_rows(report_text(gaussian, columns=["group", "fn", "sigma", "decay"]))
    assert "score+ma" in [r[0] for r in per_decay] and "decay=0.9" in per_decay[0][-1]


def suite(gaussian: Run, rows: pd.DataFrame) -> Run:
    """The rows as a suite's run: the roles of ``gaussian`` plus the task parameter ``width``."""
    width = Column("width", "key", "float", "task")
    return dataclasses.replace(gaussian, results=rows, columns=[*gaussian.columns, width])


def test_suite_frames_with_empty_columns(gaussian: Run) -> None:
    results = gaussian.results
    other = results[results["fn"] == "quadratic"].assign(task="toy", fn=math.nan, k=math.nan, width=4.0)
    frame = suite(gaussian, pd.concat([results.assign(width=math.nan), other]))  # each task its own parameters
    text = report_text(frame, group="mu")
    rows = table_rows(text)
    assert [r[0] for r in rows[1:]] == ESTIMATORS
    headers = rows[0][1:]
    assert len(headers) == 6 + 3
    assert headers[0] == "task=gaussian, sigma=0.1, fn=quadratic" and headers[-1] == "task=toy, sigma=10"
    assert "gaussian: k=0.5; toy: width=4; dim=1, mu=1; group mu; K=100, n=1" in text  # constants, task by task
    latex = report_text(frame, fmt="latex")
    assert r"task & \multicolumn{12}{c}{gaussian} & \multicolumn{6}{c}{toy} \\" in latex
    assert "\nk &" not in latex and "\nwidth &" not in latex  # rows of keys no column shows are left out
    with pytest.raises(UsageError, match=r"one table cell \(score\); .*none \(duplicate rows\)"):
        report_text(frame.with_results(pd.concat([frame.results, frame.results], ignore_index=True)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "speed"}, r"unknown metric 'speed'; valid choices: variance, .*kurtosis"),
        ({"fmt": "html"}, r"unknown format 'html'; valid choices: markdown, latex, csv"),
        ({"relative_to": "magic"}, r"'magic' is not among the estimators here: score; pathwise; .*decay=0\.9\)"),
        ({"columns": ["sigma"]}, r"columns: fn, group also vary.*keys that vary: sigma, fn, group"),
        ({"columns": ["color"]}, r"unknown key\(s\) color; valid keys: task, dim, mu, sigma"),
        ({"group": "nu"}, r"group 'nu' is not in these results; groups: mu, sigma"),
    ],
)
def test_bad_arguments_are_usage_errors(gaussian: Run, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        report_text(gaussian, **kwargs)  # type: ignore[arg-type]


def test_the_caption_names_the_run_level(gaussian: Run) -> None:
    assert "95% CI" in report_text(gaussian).splitlines()[0]
    at_90 = dataclasses.replace(gaussian, meta={**gaussian.meta, "options": {**gaussian.meta["options"], "level": 0.9}})
    assert "90% CI" in report_text(at_90).splitlines()[0]


def test_the_frame_holds_the_numbers_of_the_table(gaussian: Run) -> None:
    frame = report_frame(gaussian, "variance", group="mu", columns=["fn", "sigma"])
    assert list(frame.index) == ESTIMATORS and frame.index.name == "estimator"
    assert frame.columns.names == ["fn", "sigma"] and len(frame.columns) == 6
    record = gaussian.results.query("estimator == 'score' and group == 'mu' and fn == 'quadratic' and sigma == 1")
    assert frame.loc["score", ("quadratic", "1")] == record["variance"].item()
    assert frame.loc["score+delta", ("step", "1")] != frame.loc["score+delta", ("step", "1")]  # NaN: no result
    assert frame.attrs["caption"] == "gaussian: dim=1, mu=1, k=0.5; group mu; K=100, n=1, seed=0, device=cpu"
    ratios = report_frame(gaussian, "bias", relative_to="pathwise", group="mu", columns=["fn", "sigma"])
    assert (ratios.loc["pathwise"] == 1.0).all()
    pick = gaussian.results.query("group == 'mu' and fn == 'quadratic' and sigma == 10").set_index("estimator")["bias"]
    assert ratios.loc["score", ("quadratic", "10")] == pytest.approx(abs(pick["score"]) / abs(pick["pathwise"]))


def test_the_frame_of_one_column(gaussian: Run) -> None:
    one = gaussian.where(["fn=step", "sigma=1"])
    frame = report_frame(one, group="sigma")
    assert list(frame.columns) == ["value"]
    assert (
        frame.loc["pathwise", "value"]
        == one.results.query("estimator == 'pathwise' and group == 'sigma'")["variance"].item()
    )
    with pytest.raises(UsageError, match="unknown metric"):
        report_frame(gaussian, "speed")


# --------------------------------------------------------------------------- training runs: the final table


def test_a_training_table_shows_the_mean_over_seeds_with_its_t_interval(training_run: Run) -> None:
    text = report_text(training_run)  # the default metric of a training run: eval_elbo
    assert text == report_text(training_run, "eval_elbo")
    rows = table_rows(text)
    assert rows == [["estimator", "value"], ["score", "-102.0 ± 5.0"], ["pathwise", "**-92.0 ± 6.6**"]]
    caption = text.splitlines()[0]
    assert caption.startswith("eval_elbo: mean ± half-width of its 95% t-interval over 3 seeds")
    assert "last evaluation (step 20, 10.1 s of training on average)" in caption
    assert "1 failed run left out" in caption and "higher is better" in caption
    assert "vae: latents=2, minibatch=8" in caption and "n=1" in caption and "lr=0.001" in caption


def test_a_training_table_has_a_column_per_task_configuration(tmp_path: Path) -> None:
    run = load_run(write_training_run(tmp_path / "run", training_rows(latents=(2, 4))))
    rows = table_rows(report_text(run))
    assert rows[0] == ["estimator", "latents=2", "latents=4"]
    assert rows[1:] == [["score", "-102.0 ± 5.0", "-82.0 ± 5.0"], ["pathwise", "**-92.0 ± 6.6**", "**-72.0 ± 6.6**"]]
    frame = report_frame(run)
    assert frame.loc["score", "4"] == pytest.approx(-82.0) and frame.columns.name == "latents"
    assert "2 failed runs left out" in report_text(run).splitlines()[0]


def test_a_training_table_at_seconds(training_run: Run) -> None:
    text = report_text(training_run, at_seconds=6)
    assert table_rows(text)[1:] == [["score", "-112.0 ± 5.0"], ["pathwise", "**-102.0 ± 6.6**"]]
    assert "last evaluation within 6 s of training (step 10, 5.1 s of training on average)" in text
    assert report_frame(training_run, at_seconds=6).loc["pathwise", "value"] == pytest.approx(-102.0)


def test_a_training_table_of_one_seed_has_no_interval(training_run: Run) -> None:
    text = report_text(training_run.where(["seed=0"]))
    assert table_rows(text)[1:] == [["score", "-100"], ["pathwise", "**-90.0**"]]
    assert "over 1 seed (no interval with one seed)" in text


def test_a_training_table_in_latex_and_csv(training_run: Run) -> None:
    latex = report_text(training_run, fmt="latex")
    assert r"score & $-102.0 \pm 5.0$ \\" in latex and r"{\boldmath$-92.0 \pm 6.6$}" in latex
    assert latex.startswith("% eval\\_elbo: mean $\\pm$ half-width") and r"\begin{tabular}{lr}" in latex
    frame = pd.read_csv(io.StringIO(report_text(training_run, "eval_iwae", fmt="csv")))
    assert list(frame.columns) == [
        "estimator",
        "biased",
        "eval_iwae",
        "eval_iwae_lo",
        "eval_iwae_hi",
        "seeds",
        "failed",
    ]
    assert list(frame["eval_iwae"]) == pytest.approx([-101.0, -91.0]) and list(frame["failed"]) == [1, 0]
    assert frame.loc[0, "eval_iwae_hi"] - frame.loc[0, "eval_iwae"] == pytest.approx(
        4.302652729911275 * 2 / math.sqrt(3)
    )


def test_the_se_of_an_evaluation_has_no_best(training_run: Run) -> None:
    text = report_text(training_run, "eval_elbo_se")
    assert "**" not in text and "best per column" not in text.splitlines()[0]


def test_measurement_runs_keep_their_default_metric(gaussian: Run) -> None:
    assert report_text(gaussian) == report_text(gaussian, "variance")
    assert report_frame(gaussian).equals(report_frame(gaussian, "variance"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"metric": "variance"},
            r"unknown metric 'variance'; valid choices: train_elbo, eval_elbo, eval_elbo_se, eval_iwae",
        ),
        ({"relative_to": "score"}, r"relative_to: a training run's table shows values, not ratios"),
        ({"group": "mu"}, r"group 'mu': these results have no parameter groups"),
        ({"fmt": "html"}, r"unknown format 'html'"),
    ],
)
def test_bad_arguments_on_a_training_run(training_run: Run, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message) as error:
        report_text(training_run, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(error.value)


def test_at_seconds_is_for_training_runs(gaussian: Run) -> None:
    with pytest.raises(UsageError, match="at_seconds is for training runs"):
        report_text(gaussian, at_seconds=5.0)

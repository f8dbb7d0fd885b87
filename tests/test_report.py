"""Publication tables: layout, CI formatting, marks, ratios, LaTeX that compiles, CSV, and errors."""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from rpbench.errors import UsageError
from rpbench.report import format_number, load_results, needs_scientific, report_table
from tests.conftest import shared_run

ESTIMATORS = ["score", "pathwise", "score+delta", "score+ma (decay=0.5)", "score+ma (decay=0.9)"]


GAUSSIAN = ["-t", "gaussian", "-e", "score,pathwise,score+delta,score+ma:decay=0.5,0.9", "-p", "fn=quadratic,step"]
GAUSSIAN += ["-p", "sigma=0.1,1,10", "-p", "k=0.5", "-K", "100", "--repeats", "1"]


@pytest.fixture(scope="module")
def gaussian(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """6 task configurations × 5 estimator configurations (score+delta does not apply to the step)."""
    return shared_run(tmp_path_factory, GAUSSIAN)


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
    gaussian: pd.DataFrame,
) -> None:
    rows = table_rows(report_table(gaussian))
    assert [r[0] for r in rows[1:]] == ESTIMATORS
    assert len(rows[0]) == 1 + 6 * 2  # (sigma, fn) × group
    assert rows[0][1] == "group=mu, sigma=0.1, fn=quadratic"
    assert all(len(r) == len(rows[0]) for r in rows)


def test_best_cell_of_each_column_is_bold(gaussian: pd.DataFrame) -> None:
    rows = table_rows(report_table(gaussian, "mse", group="sigma", columns=["fn", "sigma"]))
    frame = gaussian[gaussian["group"] == "sigma"]
    for j, header in enumerate(rows[0][1:], 1):
        settings = dict(part.split("=") for part in header.split(", "))
        block = frame[(frame["fn"] == settings["fn"]) & (frame["sigma"] == float(settings["sigma"]))]
        bold = [r[0] for r in rows[1:] if r[j].startswith("**")]
        best = block.loc[block["mse"] == block["mse"].min(), "estimator"].tolist()
        assert len(bold) == len(best) >= 1
        assert all(label.split(" (")[0] in best for label in bold)


def test_snr_best_is_the_highest(gaussian: pd.DataFrame) -> None:
    rows = table_rows(report_table(gaussian, "snr", group="mu", columns=["fn", "sigma"]))
    for j in range(1, len(rows[0])):
        values = {r[0]: number(r[j]) for r in rows[1:] if r[j] != "–"}
        (bold,) = [r[0] for r in rows[1:] if r[j].startswith("**")]
        assert values[bold] == max(values.values())


def test_cells_show_value_and_ci_half_width() -> None:
    assert format_number(3.9806, 3.5, 4.5) == format_number(3.9806, 3.46, 4.5)
    cell = format_number(3.9806, 3.5, 4.5)  # half-width max(0.52, 0.48) → 2 significant digits
    assert (cell.text, cell.pm, cell.exponent) == ("3.98", "0.52", None)
    assert format_number(-0.028, -0.2, 0.147).text == "-0.03"  # value to the half-width's decimal place
    assert format_number(1234.0, 1000.0, 1500.0).text == "1230"
    sci = format_number(3.98e-5, 3.86e-5, 4.1e-5, scientific=True)
    assert (sci.text, sci.pm, sci.exponent) == ("3.98", "0.12", -5)
    bumped = format_number(9.996e-5, 9.496e-5, 1.0496e-4, scientific=True)  # 9.996 ± 0.50 rounds to 10.00
    assert (bumped.text, bumped.pm, bumped.exponent) == ("1.000", "0.050", -4)
    zero = format_number(0.0, -2.6e-17, 2.6e-17)  # a zero's own tiny half-width asks for a power of ten
    assert (zero.text, zero.pm, zero.exponent) == ("0.0", "2.6", -17)
    assert format_number(2.0).pm is None and format_number(2.0).text == "2.00"  # no CI: 3 significant digits
    assert needs_scientific([1.0, 2e3]) and needs_scientific([5e-4, 0.1]) and needs_scientific([2e4])
    assert not needs_scientific([0.01, 5.0, 0.0, math.nan])


def test_markdown_cells_match_the_frame(gaussian: pd.DataFrame) -> None:
    rows = table_rows(report_table(gaussian, "variance", group="mu", columns=["fn", "sigma"]))
    j = rows[0].index("fn=quadratic, sigma=1")
    (row,) = [r for r in rows if r[0] == "score"]
    record = gaussian.query("estimator == 'score' and group == 'mu' and fn == 'quadratic' and sigma == 1").iloc[0]
    assert math.isclose(number(row[j]), record["variance"], rel_tol=0.06)
    assert " ± " in row[j]


def test_scientific_column_uses_a_common_format() -> None:
    frame = hand_frame(variance=[3.98e-5, 2.0e-2], lo=[3.86e-5, 1.9e-2], hi=[4.1e-5, 2.2e-2])
    rows = table_rows(report_table(frame))
    assert rows[1][1] == "**(3.98 ± 0.12)e-5**"  # best (lowest) in bold
    assert rows[2][1] == "(2.00 ± 0.20)e-2\\*"  # significantly biased


def test_missing_cells_show_a_dash(gaussian: pd.DataFrame) -> None:
    rows = table_rows(report_table(gaussian, group="mu", columns=["fn", "sigma"]))
    (delta,) = [r for r in rows if r[0] == "score+delta"]
    steps = [j for j, h in enumerate(rows[0]) if "fn=step" in h]
    assert steps and all(delta[j] == "–" for j in steps)
    assert all(delta[j] != "–" for j in range(1, len(rows[0])) if j not in steps)


def test_significant_bias_gets_an_asterisk_and_a_footnote(gaussian: pd.DataFrame) -> None:
    text = report_table(gaussian, group="mu", columns=["fn", "sigma"])
    rows = table_rows(text)
    (pathwise,) = [r for r in rows if r[0] == "pathwise"]
    steps = [j for j, h in enumerate(rows[0]) if "fn=step" in h]
    assert all(pathwise[j].endswith("\\*") for j in steps)  # pathwise is wrong on the step
    assert "\\* bias beyond 4 SE" in text
    assert "†" not in text  # no estimator here is biased by construction


def hand_frame(
    variance: list[float], lo: list[float], hi: list[float], biased: tuple[bool, ...] = (False, False)
) -> pd.DataFrame:
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
    return frame


def test_biased_estimators_get_a_dagger_and_a_footnote() -> None:
    frame = hand_frame([1.0, 2.0], [0.9, 1.8], [1.1, 2.2], biased=(False, True))
    text = report_table(frame)
    rows = table_rows(text)
    assert [r[0] for r in rows[1:]] == ["alpha", "beta†"]
    assert rows[1][1] == "**1.00 ± 0.10**"
    assert rows[2][1] == "2.00 ± 0.20\\*"
    assert "† biased by construction" in text and "\\* bias beyond 4 SE" in text
    assert "toy: width=3; group theta; K=100, n=1, seed=0, device=cpu" in text


def test_bias_is_signed_and_best_is_smallest_in_absolute_value() -> None:
    frame = hand_frame([1.0, 2.0], [0.9, 1.8], [1.1, 2.2])
    frame["bias"], frame["bias_lo"], frame["bias_hi"] = [-0.05, 0.2], [-0.07, 0.1], [-0.03, 0.3]
    rows = table_rows(report_table(frame, "bias"))
    assert [rows[1][1], rows[2][1]] == ["**-0.050 ± 0.020**", "0.20 ± 0.10\\*"]
    ratios = table_rows(report_table(frame, "bias", relative_to="alpha"))
    assert [ratios[1][1], ratios[2][1]] == ["**1×**", "4.00×\\*"]  # ratios of |bias|


def test_relative_to_shows_ratios_with_one_on_the_reference(gaussian: pd.DataFrame) -> None:
    rows = table_rows(
        report_table(gaussian, "variance", relative_to="pathwise", group="sigma", columns=["fn", "sigma"])
    )
    (reference,) = [r for r in rows if r[0] == "pathwise"]
    assert all(cell.replace("*", "").replace("\\", "") == "1×" for cell in reference[1:])
    j = rows[0].index("fn=quadratic, sigma=10")
    (score,) = [r for r in rows if r[0] == "score"]
    pick = gaussian.query("group == 'sigma' and fn == 'quadratic' and sigma == 10").set_index("estimator")["variance"]
    assert score[j].endswith("×")
    assert math.isclose(number(score[j]), pick["score"] / pick["pathwise"], rel_tol=5e-3)


def test_relative_to_a_configuration(gaussian: pd.DataFrame) -> None:
    text = report_table(gaussian, relative_to="score+ma (decay=0.9)", group="mu", columns=["fn", "sigma"])
    (row,) = [r for r in table_rows(text) if r[0] == "score+ma (decay=0.9)"]
    assert all(cell.startswith(("1×", "**1×")) for cell in row[1:])
    with pytest.raises(UsageError, match=r"several configurations.*decay=0\.5"):
        report_table(gaussian, relative_to="score+ma")


def test_latex_is_a_booktabs_tabular(gaussian: pd.DataFrame) -> None:
    text = report_table(gaussian, "bias", fmt="latex")
    for part in (r"\begin{tabular}{l" + "r" * 12 + "}", r"\toprule", r"\midrule", r"\bottomrule", r"\end{tabular}"):
        assert part in text
    assert text.isascii()
    assert r"\boldmath" in text and r"\pm" in text and r"\textsuperscript{*}" in text
    assert r"\multicolumn{6}{c}{mu}" in text and r"\cmidrule(lr){2-7}" in text
    assert "score+ma (decay=0.5)" in text and "--" in text


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_compiles(gaussian: pd.DataFrame, tmp_path: Path) -> None:
    biased = gaussian.assign(biased=gaussian["estimator"] == "score+ma", estimator=gaussian["estimator"] + "_x")
    tables = [
        report_table(gaussian, "variance", fmt="latex"),
        report_table(biased, "mse", fmt="latex", relative_to="pathwise_x"),
        report_table(hand_frame([3.98e-5, 2e-2], [3.9e-5, 1.9e-2], [4.1e-5, 2.1e-2], (True, False)), fmt="latex"),
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


def test_csv_is_a_numeric_pivot(gaussian: pd.DataFrame) -> None:
    table = pd.read_csv(io.StringIO(report_table(gaussian, "variance", fmt="csv")))
    assert table["estimator"].tolist() == ESTIMATORS
    column = "variance[group=mu;sigma=1;fn=quadratic]"
    for name in (column, column.replace("variance", "variance_lo"), column.replace("variance", "variance_hi")):
        assert pd.api.types.is_float_dtype(table[name])
    record = gaussian.query("estimator == 'score' and group == 'mu' and fn == 'quadratic' and sigma == 1").iloc[0]
    assert table.loc[table["estimator"] == "score", column].item() == record["variance"]
    assert table.loc[table["estimator"] == "score+delta", "variance[group=mu;sigma=1;fn=step]"].isna().all()


def test_csv_relative(gaussian: pd.DataFrame) -> None:
    table = pd.read_csv(io.StringIO(report_table(gaussian, "mse", fmt="csv", relative_to="score")))
    ratios = table.filter(like="mse_ratio[")
    assert ratios.shape[1] == 12
    assert (ratios[table["estimator"] == "score"] == 1.0).all().all()


def test_columns_choose_the_keys(gaussian: pd.DataFrame) -> None:
    rows = table_rows(report_table(gaussian, group="mu", columns=["sigma", "fn"]))
    assert rows[0][1:3] == ["sigma=0.1, fn=quadratic", "sigma=0.1, fn=step"]
    assert rows[0][-1] == "sigma=10, fn=step"
    per_decay = table_rows(report_table(gaussian, columns=["group", "fn", "sigma", "decay"]))
    assert "score+ma" in [r[0] for r in per_decay] and "decay=0.9" in per_decay[0][-1]


def test_suite_frames_with_empty_columns(gaussian: pd.DataFrame) -> None:
    other = gaussian[gaussian["fn"] == "quadratic"].assign(task="toy", fn=math.nan, k=math.nan, width=4.0)
    frame = pd.concat([gaussian.assign(width=math.nan), other])  # a suite: each task has its own parameters
    text = report_table(frame, group="mu")
    rows = table_rows(text)
    assert [r[0] for r in rows[1:]] == ESTIMATORS
    headers = rows[0][1:]
    assert len(headers) == 6 + 3
    assert headers[0] == "task=gaussian, sigma=0.1, fn=quadratic" and headers[-1] == "task=toy, sigma=10"
    assert "gaussian: k=0.5; toy: width=4; dim=1, mu=1; group mu; K=100, n=1" in text  # constants, task by task
    latex = report_table(frame, fmt="latex")
    assert r"task & \multicolumn{12}{c}{gaussian} & \multicolumn{6}{c}{toy} \\" in latex
    assert "\nk &" not in latex and "\nwidth &" not in latex  # rows of keys no column shows are left out
    with pytest.raises(UsageError, match=r"one table cell \(score\); .*none \(duplicate rows\)"):
        report_table(pd.concat([frame, frame], ignore_index=True))


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
def test_bad_arguments_are_usage_errors(gaussian: pd.DataFrame, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        report_table(gaussian, **kwargs)  # type: ignore[arg-type]


def test_load_results_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such run folder"):
        load_results(tmp_path / "nowhere")
    with pytest.raises(UsageError, match=r"no results\.csv"):
        load_results(tmp_path)
    (tmp_path / "results.csv").write_text("task,estimator,group,variance\ngaussian,score,mu,1.0\n")
    with pytest.raises(UsageError, match=r"not an rpbench results table; missing columns: biased, samples, .*in all\)"):
        load_results(tmp_path)


def test_load_results_reads_the_level(gaussian: pd.DataFrame) -> None:
    assert gaussian.attrs["level"] == 0.95
    assert "95% CI" in report_table(gaussian).splitlines()[0]
    assert gaussian["biased"].dtype == bool and gaussian["bias_significant"].dtype == bool

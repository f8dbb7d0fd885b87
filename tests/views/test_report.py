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


SUPERSCRIPT_DIGITS = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")
CELL = re.compile(r"\(?(-?[\d.]+)(?: ± ([\d.]+)| \[(-?[\d.]+), (-?[\d.]+)\])?\)?(?:×10([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+))?×?")


def parse_cell(cell: str) -> tuple[float, float, float]:
    """The value and bounds of a cell such as ``**16.6 [3.5, 82.1]**\\*``, ``3.98 ± 0.52`` or
    ``(3.98 [3.86, 4.10])×10⁻⁵`` (NaN bounds where it shows none)."""
    text = cell.replace("*", "").replace("\\", "")
    if text == "∞":
        return math.inf, math.inf, math.inf
    match = CELL.fullmatch(text)
    assert match, cell
    scale = 10.0 ** int(match.group(5).translate(SUPERSCRIPT_DIGITS)) if match.group(5) else 1.0
    value = float(match.group(1))
    if match.group(2):
        lo, hi = value - float(match.group(2)), value + float(match.group(2))
    elif match.group(3):
        lo, hi = float(match.group(3)), float(match.group(4))
    else:
        lo = hi = math.nan
    return value * scale, lo * scale, hi * scale


def number(cell: str) -> float:
    """The leading value of a cell."""
    return parse_cell(cell)[0]


def bold(cell: str) -> bool:
    return cell.startswith("**")


def test_markdown_has_one_row_per_estimator_configuration_and_one_column_per_task_configuration(
    gaussian: Run,
) -> None:
    rows = table_rows(report_text(gaussian))
    assert [r[0] for r in rows[1:]] == ESTIMATORS
    assert len(rows[0]) == 1 + 6 * 2  # (sigma, fn) × group
    assert rows[0][1] == "group=mu, sigma=0.1, fn=quadratic"
    assert all(len(r) == len(rows[0]) for r in rows)


def check_significant_best(rows: list[list[str]], higher: bool) -> int:
    """Every column's bold cells are the best unflagged row and those whose intervals overlap it,
    none where all overlap; returns how many columns have a bold cell."""
    marked = 0
    for j in range(1, len(rows[0])):
        cells = {r[0]: parse_cell(r[j]) for r in rows[1:] if r[j] != "–" and not r[j].endswith("\\*")}
        cells = {k: (0.0, 0.0, 0.0) if v[0] == 0 and math.isnan(v[1]) else v for k, v in cells.items()}
        cells = {k: v for k, v in cells.items() if not math.isnan(v[1])}  # round-off 0: its interval is ~0
        shown = {r[0] for r in rows[1:] if bold(r[j])}
        if len(cells) < 2:
            assert not shown
            continue
        leader = (max if higher else min)(cells, key=lambda k: cells[k][0])
        tied = {k for k, (_, lo, hi) in cells.items() if lo <= cells[leader][2] and cells[leader][1] <= hi}
        assert shown == (set() if tied == set(cells) else tied), (j, shown, tied)
        marked += bool(shown)
    return marked


def test_bold_marks_a_significant_best_only(gaussian: Run) -> None:
    rows = table_rows(report_text(gaussian, "mse", group="sigma", columns=["fn", "sigma"]))
    assert check_significant_best(rows, higher=False) >= 3
    snr = table_rows(report_text(gaussian, "snr", group="mu", columns=["fn", "sigma"]))
    assert check_significant_best(snr, higher=True) >= 1


def test_overlapping_intervals_tie_and_a_tie_of_all_marks_none() -> None:
    apart = table_rows(report_text(hand_run([1.0, 2.0], [0.9, 1.8], [1.1, 2.2], flags=(False, False))))
    assert [bold(apart[1][1]), bold(apart[2][1])] == [True, False]
    overlapping = table_rows(report_text(hand_run([1.0, 1.2], [0.8, 1.0], [1.3, 1.5], flags=(False, False))))
    assert not bold(overlapping[1][1]) and not bold(overlapping[2][1])  # the smallest value alone would be bold
    three = hand_run([1.0, 1.4, 5.0], [0.9, 1.05, 4.5], [1.2, 1.6, 5.5], flags=(False, False, False))
    assert [bold(r[1]) for r in table_rows(report_text(three))[1:]] == [True, True, False]


def test_a_biased_row_is_not_best_unless_asked() -> None:
    run = hand_run([0.0, 2.0], [0.0, 1.8], [0.0, 2.2], flags=(True, False))  # alpha: variance 0, biased
    rows = table_rows(report_text(run))
    assert rows[1][1] == "0\\*" and rows[2][1] == "2.00 ± 0.20"  # one candidate: no best
    rows = table_rows(report_text(run, best_includes_biased=True))
    assert bold(rows[1][1]) and not bold(rows[2][1])


def test_round_off_shows_as_zero_with_its_resolution_in_the_caption() -> None:
    run = hand_run([1.2e-31, 2.0], [0.0, 1.8], [4e-31, 2.2], flags=(False, False))
    text = report_text(run)
    rows = table_rows(text)
    assert rows[1][1] == "**0**" and rows[2][1] == "2.00 ± 0.20"
    assert "0: below round-off (1.0e-12" in text.splitlines()[0]
    three = hand_run([1.2e-31, 0.0, 2.0], [1e-31, 0.0, 1.8], [4e-31, 0.0, 2.2], flags=(False, False, False))
    tied = table_rows(report_text(three))  # round-off and an exact zero tie: both read 0, both bold
    assert [r[1] for r in tied[1:]] == ["**0**", "**0**", "2.00 ± 0.20"]
    bias = run.with_results(run.results.assign(bias=[1e-17, 0.3], bias_lo=[-2e-17, -0.1], bias_hi=[4e-17, 0.7]))
    noise = table_rows(report_text(bias, "bias"))
    assert noise[1][1] == "0" and not bold(noise[2][1])  # noise does not win the bold


def score_record(run: Run) -> pd.Series:
    """The row of score, group mu, fn=quadratic, sigma=1."""
    return run.results.query("estimator == 'score' and group == 'mu' and fn == 'quadratic' and sigma == 1").iloc[0]


def test_markdown_cells_match_the_frame(gaussian: Run) -> None:
    rows = table_rows(report_text(gaussian, "variance", group="mu", columns=["fn", "sigma"]))
    j = rows[0].index("fn=quadratic, sigma=1")
    (row,) = [r for r in rows if r[0] == "score"]
    record = score_record(gaussian)
    value, lo, hi = parse_cell(row[j])
    assert math.isclose(value, record["variance"], rel_tol=0.01)
    assert lo <= record["variance_lo"] and hi >= record["variance_hi"]  # bounds rounded outwards
    assert math.isclose(lo, record["variance_lo"], rel_tol=0.06) and math.isclose(
        hi, record["variance_hi"], rel_tol=0.06
    )


def test_powers_of_ten_per_cell_and_never_for_plain_magnitudes() -> None:
    frame = hand_run(variance=[3.98e-5, 2.0e-2], lo=[3.86e-5, 1.9e-2], hi=[4.1e-5, 2.2e-2])
    rows = table_rows(report_text(frame))
    assert rows[1][1] == "(3.98 [3.86, 4.10])×10⁻⁵"  # the only unbiased row: no best
    assert rows[2][1] == "0.0200 [0.0190, 0.0220]\\*"  # significantly biased; no power of ten at 1e-2


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


def hand_run(
    variance: list[float],
    lo: list[float],
    hi: list[float],
    biased: tuple[bool, ...] = (False, False, False),
    flags: tuple[bool, ...] = (False, True, False),
) -> Run:
    """Two (or three) estimators on one task configuration and group, every metric given by hand;
    ``flags`` are their ``bias_significant``."""
    n = len(variance)
    metrics = {m: [1.0] * n for m in ("mean", "bias", "variance_per_coord", "mse", "snr", "cosine", "kurtosis")}
    metrics |= {"sec_per_estimate": [1e-5] * n, "work_variance": [1e-5] * n}
    frame = pd.DataFrame(
        {
            "task": "toy",
            "estimator": ["alpha", "beta", "gamma"][:n],
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
            "bias_significant": list(flags)[:n],
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
    assert rows[1][1] == "1.00 ± 0.10"  # beta is biased: no candidate to beat, no best
    assert rows[2][1] == "2.00 ± 0.20\\*"
    assert "† biased by construction" in text and "\\* bias beyond 4 SE" in text
    assert "toy: width=3; group theta; K=100, n=1, seed=0, device=cpu" in text


def test_bias_is_signed_and_best_is_smallest_in_absolute_value() -> None:
    run = hand_run([1.0, 2.0], [0.9, 1.8], [1.1, 2.2])
    run = run.with_results(run.results.assign(bias=[-0.05, 0.2], bias_lo=[-0.07, 0.1], bias_hi=[-0.03, 0.3]))
    rows = table_rows(report_text(run, "bias"))
    assert [rows[1][1], rows[2][1]] == ["**-0.050 ± 0.020**", "0.20 ± 0.10\\*"]  # |bias| intervals apart
    ratios = table_rows(report_text(run, "bias", relative_to="alpha"))
    assert [ratios[1][1], ratios[2][1]] == ["**1×**", "4.0 [1.8, 7.7]×\\*"]  # ratios of |bias|; best of the values


def test_relative_to_shows_ratios_with_one_on_the_reference(gaussian: Run) -> None:
    rows = table_rows(report_text(gaussian, "variance", relative_to="pathwise", group="sigma", columns=["fn", "sigma"]))
    (reference,) = [r for r in rows if r[0] == "pathwise"]
    assert all(cell.replace("*", "").replace("\\", "") == "1×" for cell in reference[1:])
    j = rows[0].index("fn=quadratic, sigma=10")
    (score,) = [r for r in rows if r[0] == "score"]
    pick = gaussian.results.query("group == 'sigma' and fn == 'quadratic' and sigma == 10")
    pick = pick.set_index("estimator")["variance"]
    assert score[j].endswith("×")
    ratio, lo, hi = parse_cell(score[j])
    assert math.isclose(ratio, pick["score"] / pick["pathwise"], rel_tol=5e-3) and lo < ratio < hi


def test_relative_to_a_configuration(gaussian: Run) -> None:
    text = report_text(gaussian, relative_to="score+ma (decay=0.9)", group="mu", columns=["fn", "sigma"])
    (row,) = [r for r in table_rows(text) if r[0] == "score+ma (decay=0.9)"]
    assert all(cell.startswith(("1×", "**1×")) for cell in row[1:])
    with pytest.raises(UsageError, match=r"several configurations.*decay=0\.5"):
        report_text(gaussian, relative_to="score+ma")


def test_latex_is_a_booktabs_tabular(gaussian: Run) -> None:
    text = report_text(gaussian, "variance", fmt="latex")
    for part in (r"\begin{tabular}{l" + "r" * 12 + "}", r"\toprule", r"\midrule", r"\bottomrule", r"\end{tabular}"):
        assert part in text
    assert text.isascii()
    assert r"\boldmath" in text and r"^{+" in text and r"\textsuperscript{*}" in text
    assert r"^{+" in report_text(gaussian, "bias", fmt="latex")  # a one-coordinate bias: skewness-corrected
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
        report_text(gaussian, "variance,snr,sec_per_estimate", fmt="latex", group="mu", caption="A & B", label="tab:g"),
        report_text(gaussian, "bias", fmt="latex", relative_to="pathwise", caption="Ratios"),
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


def test_several_metrics_share_one_table(gaussian: Run) -> None:
    text = report_text(gaussian, "variance,snr,sec_per_estimate", group="mu", columns=["fn", "sigma"])
    rows = table_rows(text)
    assert len(rows[0]) == 1 + 3 * 6
    assert rows[0][1] == "variance, fn=quadratic, sigma=0.1" and rows[0][7] == "snr, fn=quadratic, sigma=0.1"
    unit = re.match(r"sec_per_estimate \((s|ms|µs|ns)\), fn=quadratic", rows[0][13])
    assert unit, rows[0][13]
    factor = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "ns": 1e-9}[unit.group(1)]
    (score,) = [r for r in rows if r[0] == "score"]
    record = score_record(gaussian)
    j = rows[0].index(f"sec_per_estimate ({unit.group(1)}), fn=quadratic, sigma=1")
    assert math.isclose(number(score[j]) * factor, record["sec_per_estimate"], rel_tol=0.06)
    assert text.splitlines()[0].startswith(f"variance, snr, sec_per_estimate ({unit.group(1)}): value [")
    frame = pd.read_csv(io.StringIO(report_text(gaussian, "variance,snr", fmt="csv")))
    assert {"variance[group=mu;sigma=1;fn=quadratic]", "snr_hi[group=mu;sigma=1;fn=quadratic]"} <= set(frame.columns)
    latex = report_text(gaussian, "variance,snr", fmt="latex", group="mu", columns=["fn", "sigma"])
    assert r" & \multicolumn{6}{c}{variance} & \multicolumn{6}{c}{snr} \\" in latex
    assert r"\cmidrule(lr){2-7} \cmidrule(lr){8-13}" in latex


def test_caption_and_label_make_a_latex_float(gaussian: Run) -> None:
    latex = report_text(gaussian, "variance", fmt="latex", caption="Variance of the gradient", label="tab:var")
    lines = latex.splitlines()
    assert lines[:2] == [r"\begin{table}[t]", r"\centering"] and lines[-1] == r"\end{table}"
    assert lines[2].startswith(
        r"\caption{Variance of the gradient. variance: value with superscript +(upper - value) and subscript"
    )
    assert lines[3] == r"\label{tab:var}"
    assert report_text(gaussian, fmt="latex").startswith("% variance: value with superscript")  # no float without
    markdown = report_text(gaussian, caption="Table 1: variance")
    assert markdown.startswith("Table 1: variance. variance: value [")


def test_ratio_intervals_combine_the_two_cells() -> None:
    from rpbench.views.report_cells import Bounded, ratio_interval

    cell, base = Bounded(4.0, 2.0, 8.0), Bounded(2.0, 1.0, 4.0)  # each log-arm log 2
    ratio = ratio_interval(cell, base)
    assert ratio.value == 2.0
    assert ratio.hi == pytest.approx(2.0 * math.exp(math.sqrt(2) * math.log(2)))
    assert ratio.lo == pytest.approx(2.0 * math.exp(-math.sqrt(2) * math.log(2)))
    assert ratio_interval(Bounded(4.0, 0.0, 8.0), base).lo == 0.0  # a cell's interval reaching 0
    assert math.isnan(ratio_interval(Bounded(-1.0, -2.0, 0.5), base).lo)  # a signed value: none


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
    lo, hi = table.filter(like="mse_ratio_lo["), table.filter(like="mse_ratio_hi[")
    assert ((lo.to_numpy() <= ratios.to_numpy()) | lo.isna().to_numpy()).all() and (hi.to_numpy() >= ratios.to_numpy())[
        ~hi.isna().to_numpy()
    ].all()


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
    assert (
        "gaussian: k=0.5; toy: width=4; dim=1, mu=1, dtype=float64; group mu; K=100, n=1" in text
    )  # constants, task by task
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
    assert (
        frame.attrs["caption"]
        == "gaussian: dim=1, mu=1, k=0.5, dtype=float64; group mu; K=100, n=1, seed=0, device=cpu"
    )
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
    assert rows == [["estimator", "value"], ["score", "-102.0 ± 5.0"], ["pathwise", "-92.0 ± 6.6"]]  # they overlap
    caption = text.splitlines()[0]
    assert caption.startswith("eval_elbo: mean ± half-width of its 95% t-interval over 3 seeds")
    assert "last evaluation (step 20, 10.1 s of training on average)" in caption
    assert "1 failed run left out" in caption and "higher is better" in caption
    assert "vae: latents=2, minibatch=8" in caption and "n=1" in caption and "lr=0.001" in caption


def test_a_training_table_has_a_column_per_task_configuration(tmp_path: Path) -> None:
    run = load_run(write_training_run(tmp_path / "run", training_rows(latents=(2, 4))))
    rows = table_rows(report_text(run))
    assert rows[0] == ["estimator", "latents=2", "latents=4"]
    assert rows[1:] == [["score", "-102.0 ± 5.0", "-82.0 ± 5.0"], ["pathwise", "-92.0 ± 6.6", "-72.0 ± 6.6"]]
    frame = report_frame(run)
    assert frame.loc["score", "4"] == pytest.approx(-82.0) and frame.columns.name == "latents"
    assert "2 failed runs left out" in report_text(run).splitlines()[0]


def test_a_training_table_at_seconds(training_run: Run) -> None:
    text = report_text(training_run, at_seconds=6)
    assert table_rows(text)[1:] == [["score", "-112.0 ± 5.0"], ["pathwise", "-102.0 ± 6.6"]]
    assert "last evaluation within 6 s of training (step 10, 5.1 s of training on average)" in text
    assert report_frame(training_run, at_seconds=6).loc["pathwise", "value"] == pytest.approx(-102.0)


def test_a_training_table_of_one_seed_has_no_interval(training_run: Run) -> None:
    text = report_text(training_run.where(["seed=0"]))
    assert table_rows(text)[1:] == [["score", "-100"], ["pathwise", "-90.0"]]  # no interval: no best
    assert "over 1 seed (no interval with one seed)" in text


def test_a_training_table_in_latex_and_csv(training_run: Run) -> None:
    latex = report_text(training_run, fmt="latex")
    assert r"score & $-102.0 \pm 5.0$ \\" in latex and r"pathwise & $-92.0 \pm 6.6$ \\" in latex
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


def test_per_evaluations_weights_the_variance_by_each_estimators_evaluations(equal_cost_run: Run) -> None:
    """At equal cost each row is an estimator at its own n; ``--per`` shows variance × cost."""
    frame = report_frame(equal_cost_run, metric="eval_variance")
    assert list(frame.index) == ["score (n=8)", "pathwise (n=8)", "mvd (n=1)"]  # MVD: 4·D = 8 per sample
    variance = report_frame(equal_cost_run, metric="variance")
    pd.testing.assert_frame_equal(frame, variance * 8, check_exact=False, rtol=1e-12)
    from rpbench import api

    text = api.report(equal_cost_run, per="evaluations", format="markdown")
    assert text.startswith("eval_variance:") and "equal cost: at most 8 evaluations of f per estimate" in text
    assert "batch=" not in text  # n is each row's, not a column
    assert str(api.report(equal_cost_run, per="seconds", format="markdown")).startswith("work_variance")


@pytest.mark.parametrize(
    ("per", "metric", "message"),
    [("bogus", None, "--per 'bogus': valid choices: evaluations, seconds"), ("seconds", "snr", "'snr' has none")],
)
def test_per_refuses_an_unknown_cost_or_a_metric_without_one(
    equal_cost_run: Run, per: str, metric: str | None, message: str
) -> None:
    from rpbench import api

    with pytest.raises(UsageError, match=re.escape(message)):
        api.report(equal_cost_run, metric=metric, per=per, format="markdown")

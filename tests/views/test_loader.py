"""The one loader: typed frames from run.json's roles, and one-line errors naming file and line."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from rpbench.columns import result_columns
from rpbench.errors import UsageError
from rpbench.views.loader import Run, load_run, run_from_text, sidecar
from tests.views.runs import DISCRETE, GAUSSIAN, shared_run_dir


@pytest.fixture
def copy(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the Gaussian sweep's run folder."""
    target = tmp_path / "run"
    shutil.copytree(shared_run_dir(tmp_path_factory, GAUSSIAN), target)
    return target


def one_line_error(path: Path | str, match: str) -> str:
    """The message of the :class:`UsageError` that loading ``path`` raises (asserted one line)."""
    with pytest.raises(UsageError, match=match) as error:
        load_run(path)
    message = str(error.value)
    assert "\n" not in message
    return message


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def test_a_run_folder_is_read_with_its_metadata_and_coordinates(gaussian_run: Run) -> None:
    run = gaussian_run
    assert run.level == 0.95 and run.meta["options"]["level"] == 0.95
    assert run.task_params == ["dim", "mu", "sigma", "fn", "k", "dtype"]
    assert run.estimator_params == ["cv_beta", "decay"]
    assert run.key_columns[:8] == ["task", "estimator", "biased", "group", "samples", "batch", "seed", "device"]
    assert run.key_columns[8:] == ["dim", "mu", "sigma", "fn", "k", "dtype", "cv_beta", "decay"]
    assert len(run.results) == 2 * 3 * 2 * 5 - 2 * 3  # score+delta does not apply to the step
    assert not run.coords.empty and run.coords["coord"].dtype == "int64"
    assert set(run.coords["estimator"]) == set(run.results["estimator"])
    assert run.path is not None and run.path.is_dir()


def test_types_survive_the_round_trip(tmp_path_factory: pytest.TempPathFactory) -> None:
    run = load_run(shared_run_dir(tmp_path_factory, DISCRETE))
    frame = run.results
    assert frame["latents"].dtype == "int64" and frame["minibatch"].dtype == "int64"
    assert (frame["latents"] == 2).all() and str(frame["latents"].iloc[0]) == "2"
    assert frame["biased"].dtype == bool and frame["biased"].all()  # relaxed estimators are biased
    assert frame["bias_significant"].dtype == bool
    assert frame["tau"].dtype == "float64" and frame["samples"].dtype == "int64"
    assert pd.api.types.is_string_dtype(frame["estimator"])


def test_empty_cells_of_typed_columns_stay_typed(tmp_path: Path) -> None:
    # a suite: latents (int) and biased-looking flags are empty for the other task's rows
    columns = result_columns([("latents", int), ("fn", str)], [("hard", bool)])
    header = [c.name for c in columns]
    first = dict.fromkeys(header, "") | {"task": "vae", "estimator": "gumbel", "biased": "True", "group": "encoder"}
    first |= {"samples": "10", "batch": "1", "seed": "0", "device": "cpu", "latents": "2", "hard": "True"}
    first |= {"variance": "0.5", "status": "ok", "bias_significant": "False", "cell_seed": "7"}
    second = first | {"task": "gaussian", "latents": "", "hard": "", "fn": "cos", "variance": "", "status": "failed"}
    second |= {"bias_significant": "", "error": "it broke, badly"}
    text = pd.DataFrame([first, second], columns=header).to_csv(index=False)
    run = run_from_text(text, None, {"columns": [c.to_json() for c in columns], "options": {"level": 0.9}})
    frame = run.results
    assert frame["latents"].dtype == "Int64" and frame["latents"].iloc[0] == 2 and frame["latents"].isna().iloc[1]
    assert frame["hard"].dtype == "boolean" and bool(frame["hard"].iloc[0]) and frame["hard"].isna().iloc[1]
    assert frame["bias_significant"].dtype == "boolean"
    assert frame["fn"].isna().iloc[0] and frame["fn"].iloc[1] == "cos"
    assert frame["error"].iloc[1] == "it broke, badly"
    assert frame["variance"].isna().iloc[1] and frame["variance"].iloc[0] == 0.5
    assert list(frame.loc[frame["latents"] == 2, "task"]) == ["vae"]
    assert run.level == 0.9 and run.coords.empty and run.path is None


def test_a_torn_last_line_names_the_line(copy: Path) -> None:
    results = copy / "results.csv"
    rows = lines(results)
    with open(results, "r+b") as handle:  # cut the file in the middle of its last row
        handle.truncate(len("".join(rows[:-1]).encode()) + len(rows[-1].encode()) // 2)
    message = one_line_error(copy, rf"line {len(rows)}: torn row \(\d+ of {rows[0].count(',') + 1} fields\)")
    assert str(results) in message and "rpbench run --resume" in message


def test_a_row_cut_at_a_field_boundary_is_torn_too(copy: Path) -> None:
    results = copy / "results.csv"
    rows = lines(results)
    fields = rows[-1].split(",")
    results.write_text("".join(rows[:-1]) + ",".join(fields[:41]) + "\n")
    one_line_error(copy, rf"results\.csv line {len(rows)}: torn row \(41 of {len(fields)} fields\)")
    results.write_text("".join(rows)[:-1])  # complete but for the final newline
    one_line_error(copy, rf"line {len(rows)}: torn row")


def test_a_short_row_in_the_middle_is_named(copy: Path) -> None:
    results = copy / "results.csv"
    rows = lines(results)
    rows[5] = rows[5].split(",", 1)[1]
    results.write_text("".join(rows))
    one_line_error(copy, r"results\.csv line 6: torn row")


def test_a_missing_column_is_named(copy: Path) -> None:
    frame = pd.read_csv(copy / "results.csv", dtype=str, keep_default_na=False)
    frame.drop(columns="variance_lo").to_csv(copy / "results.csv", index=False)
    one_line_error(
        copy, r"results\.csv: the header differs from the columns in run\.json: missing column\(s\) variance_lo$"
    )
    frame.assign(colour="red").to_csv(copy / "results.csv", index=False)
    one_line_error(copy, r"column\(s\) not in run\.json: colour")


def test_a_non_numeric_metric_names_line_and_column(copy: Path) -> None:
    frame = pd.read_csv(copy / "results.csv", dtype=str, keep_default_na=False)
    frame.loc[3, "variance_lo"] = "abc"
    frame.to_csv(copy / "results.csv", index=False)
    one_line_error(copy, r"results\.csv line 5, column variance_lo: 'abc' is not a number$")


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("samples", "many", r"line 3, column samples: 'many' is not a number"),
        ("samples", "2.5", r"line 3, column samples: '2.5' is not an integer"),
        ("biased", "maybe", r"line 3, column biased: 'maybe' is not a bool \(True or False\)"),
    ],
)
def test_bad_ints_and_bools_are_named(copy: Path, column: str, value: str, message: str) -> None:
    frame = pd.read_csv(copy / "results.csv", dtype=str, keep_default_na=False)
    frame.loc[1, column] = value
    frame.to_csv(copy / "results.csv", index=False)
    one_line_error(copy, message)


def test_integral_floats_of_older_writers_are_ints(copy: Path) -> None:
    frame = pd.read_csv(copy / "results.csv", dtype=str, keep_default_na=False)
    frame["samples"] = "100.0"
    frame.to_csv(copy / "results.csv", index=False)
    assert load_run(copy).results["samples"].tolist() == [100] * len(frame)


def test_metadata_problems(copy: Path, tmp_path: Path) -> None:
    meta = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "columns"}))
    one_line_error(copy, r'run\.json: no "columns" in the run metadata')
    (copy / "run.json").write_text("{not json")
    one_line_error(copy, r"run\.json: not valid JSON")
    (copy / "run.json").write_text(json.dumps(meta | {"options": {"level": 1.5}}))
    one_line_error(copy, r"run\.json: options\.level 1\.5 is not a confidence level")
    (copy / "run.json").unlink()
    message = one_line_error(copy, r"results\.csv: no run\.json beside it")
    assert str(copy) in message


def test_missing_paths_and_files(tmp_path: Path) -> None:
    one_line_error(tmp_path / "nowhere", r"nowhere: no such file or folder")
    one_line_error(tmp_path, r"a folder without results\.csv")
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    one_line_error(other, r"other\.csv: no other\.json beside it")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x00\xff\xfe" * 100)
    binary.with_suffix(".json").write_text(json.dumps({"columns": [{"name": "a", "role": "key", "type": "str"}]}))
    one_line_error(binary, r"binary\.csv: cannot read it as text")


def test_a_table_without_rows(copy: Path) -> None:
    results = copy / "results.csv"
    results.write_text(lines(results)[0])
    one_line_error(copy, r"results\.csv: has no result rows")
    results.write_text("")
    one_line_error(copy, r"results\.csv: an empty file")


def test_a_baseline_csv_takes_its_own_json(copy: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline"
    baseline.mkdir()
    shutil.copy(copy / "results.csv", baseline / "ci.csv")
    shutil.copy(copy / "run.json", baseline / "ci.json")
    assert sidecar(baseline / "ci.csv") == baseline / "ci.json"
    assert sidecar(copy / "results.csv") == copy / "run.json"
    run = load_run(baseline / "ci.csv")
    assert run.results.equals(load_run(copy).results) and run.coords.empty
    assert load_run(copy / "results.csv").results.equals(run.results)


def test_in_memory_text_is_typed_like_a_file(copy: Path) -> None:
    meta = json.loads((copy / "run.json").read_text())
    run = run_from_text((copy / "results.csv").read_text(), (copy / "coords.csv").read_text(), meta)
    loaded = load_run(copy)
    assert run.results.equals(loaded.results) and run.coords.equals(loaded.coords)
    assert list(run.results.dtypes) == list(loaded.results.dtypes)
    with pytest.raises(UsageError, match=r"^<memory> line 3: torn row"):
        run_from_text("".join(lines(copy / "results.csv")[:3])[:-20], None, meta)


def test_where_filters_by_typed_values(gaussian_run: Run) -> None:
    kept = gaussian_run.where(["sigma=1,10", "estimator=score"])
    assert set(kept.results["sigma"]) == {1.0, 10.0} and set(kept.results["estimator"]) == {"score"}
    assert kept.columns == gaussian_run.columns and kept.meta is gaussian_run.meta
    assert len(gaussian_run.where(["sigma=1.0"]).results) == len(gaussian_run.where(["sigma=1"]).results) > 0
    assert len(gaussian_run.where(["biased=false"]).results) == len(gaussian_run.results)
    assert gaussian_run.where(["decay=0.9"]).results["estimator"].unique().tolist() == ["score+ma"]


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("color=red", r"--where color=red: no column 'color'; columns: task, estimator, biased"),
        ("sigma=3", r"--where sigma=3: no row matches; values present: 0\.1, 1, 10"),
        ("sigma=big", r"--where sigma=big: sigma holds numbers; 'big' is not one"),
        ("biased=perhaps", r"--where biased=perhaps: biased holds True or False"),
        ("sigma", r"--where: 'sigma' is not of the form key=value"),
    ],
)
def test_where_errors(gaussian_run: Run, condition: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        gaussian_run.where([condition])


def test_loading_thousands_of_rows_is_fast(copy: Path, tmp_path: Path) -> None:
    rows = lines(copy / "results.csv")
    big = tmp_path / "big"
    big.mkdir()
    (big / "results.csv").write_text(rows[0] + "".join(rows[1:]) * (5000 // (len(rows) - 1)))
    shutil.copy(copy / "run.json", big / "run.json")
    started = time.perf_counter()
    run = load_run(big)
    elapsed = time.perf_counter() - started
    assert len(run.results) >= 4900 and run.results["samples"].dtype == "int64"
    assert elapsed < 2.0 * max(1, (os.getloadavg()[0] / (os.cpu_count() or 1)))


def test_coordinates_without_rows_are_an_empty_frame(copy: Path) -> None:
    coords = copy / "coords.csv"
    coords.write_text(lines(coords)[0])  # every group too large for per-coordinate rows
    run = load_run(copy)
    assert run.coords.empty and "coord" in run.coords.columns and len(run.results) > 0
    coords.write_text(lines(coords)[0] + "gaussian,score,mu\n")
    one_line_error(copy, r"coords\.csv line 2: torn row \(3 of \d+ fields\)")


# --------------------------------------------------------------------------- training runs (curves.csv)


def test_a_training_run_folder_reads_its_curves(training_dir: Path, gaussian_run: Run) -> None:
    run = load_run(training_dir)
    assert run.kind == "train" and gaussian_run.kind == "measure"
    assert run.path == training_dir and run.coords.empty and run.level == 0.95
    frame = run.results
    assert len(frame) == 2 * 3 * 3 + 2  # 2 estimators × 3 seeds × 3 steps, and the failed run's 2 rows
    assert frame["step"].dtype == "int64" and frame["seconds"].dtype == "float64" and frame["seed"].dtype == "int64"
    assert frame["biased"].dtype == bool and frame["eval_elbo"].dtype == "float64"
    assert frame["eval_elbo"].isna().sum() == 1 and set(frame["status"]) == {"ok", "failed"}
    assert run.task_params == ["latents", "minibatch", "model_seed"] and run.estimator_params == ["tau"]
    assert run.key_columns[:4] == ["task", "estimator", "biased", "seed"] and run.key_columns[-1] == "step"
    assert run.column("step") is not None and run.column("step").kind == "step"  # type: ignore[union-attr]
    by_csv = load_run(training_dir / "curves.csv")
    assert by_csv.kind == "train" and by_csv.results.equals(frame)
    assert sidecar(training_dir / "curves.csv") == training_dir / "run.json"
    assert run.where(["seed=0", "step=20"]).results["eval_elbo"].tolist() == [-100.0, -90.0]


def test_a_training_run_in_memory(training_dir: Path) -> None:
    meta = json.loads((training_dir / "run.json").read_text())
    run = run_from_text((training_dir / "curves.csv").read_text(), None, meta)
    assert run.kind == "train" and run.results.equals(load_run(training_dir).results)
    assert Run(pd.DataFrame()).kind == "measure"


def test_a_torn_curves_file_is_refused_in_one_line(training_dir: Path) -> None:
    curves = training_dir / "curves.csv"
    rows = lines(curves)
    curves.write_text("".join(rows[:-1]) + rows[-1][: len(rows[-1]) // 2])
    message = one_line_error(training_dir, rf"curves\.csv line {len(rows)}: torn row")
    assert str(curves) in message
    curves.write_text("".join(rows[:3]) + rows[3].split(",", 2)[2] + "".join(rows[4:]))
    one_line_error(training_dir, r"curves\.csv line 4: torn row")


def test_a_curves_header_and_types_are_checked(training_dir: Path) -> None:
    curves = training_dir / "curves.csv"
    frame = pd.read_csv(curves, dtype=str, keep_default_na=False)
    frame.drop(columns="eval_iwae").to_csv(curves, index=False)
    one_line_error(
        training_dir, r"curves\.csv: the header differs from the columns in run\.json: missing column\(s\) eval_iwae$"
    )
    frame.assign(step=frame["step"].where(frame.index != 2, "late")).to_csv(curves, index=False)
    one_line_error(training_dir, r"curves\.csv line 4, column step: 'late' is not a number$")
    curves.write_text(lines(curves)[0])
    one_line_error(training_dir, r"curves\.csv: has no result rows")


def test_the_kind_of_run_must_match_its_file(training_dir: Path, copy: Path) -> None:
    meta = json.loads((training_dir / "run.json").read_text())
    (training_dir / "run.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "kind"}))
    one_line_error(training_dir, r'curves\.csv: training curves, but .*run\.json does not say "kind": "train"')
    (training_dir / "run.json").write_text(json.dumps(meta | {"kind": "dance"}))
    one_line_error(training_dir, r"run\.json: kind 'dance' is not a kind of run; valid: measure, train")
    without_step = [c for c in meta["columns"] if c["name"] != "step"]
    (training_dir / "run.json").write_text(json.dumps(meta | {"columns": without_step}))
    one_line_error(training_dir, r'run\.json: a training run \("kind": "train"\) without column\(s\) step$')
    measure = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps(measure | {"kind": "train"}))
    one_line_error(copy, r'results\.csv: .*run\.json says "kind": "train"; a training run\'s rows are in curves\.csv')


def test_a_folder_without_either_table(tmp_path: Path) -> None:
    message = one_line_error(tmp_path, r"a folder without results\.csv \(or curves\.csv\)")
    assert "rpbench train" in message

"""The columns of results.csv: order, roles, types, and the names no parameter may take."""

from __future__ import annotations

import pytest

from rpbench.columns import RESERVED, Column, columns_from_json, curve_columns, metric_columns, result_columns
from rpbench.metrics import COLUMNS


def test_metric_columns_are_the_metrics_module_s_in_its_order() -> None:
    assert metric_columns() == COLUMNS


def test_result_columns_give_every_column_a_role_and_a_type() -> None:
    columns = result_columns([("sigma", float), ("latents", int), ("fn", str), ("sigma", float)], [("tau", float)])
    names = [c.name for c in columns]
    identity = ["task", "estimator", "biased", "group", "samples", "batch", "seed", "device"]
    assert names[:12] == [*identity, "sigma", "latents", "fn", "tau"]  # a name seen twice keeps its first place
    by_name = {c.name: c for c in columns}
    assert by_name["latents"] == Column("latents", "key", "int", "task")
    assert by_name["biased"].type == "bool" and by_name["bias_significant"].type == "bool"
    assert by_name["variance_lo"] == Column("variance_lo", "ci", "float", of="variance")
    assert by_name["sec_per_estimate_hi"].role == "timing" and by_name["setup_seconds"].role == "timing"
    assert by_name["kurtosis"].role == "metric" and by_name["status"].role == "outcome"
    assert {c.role for c in columns} == {"key", "metric", "ci", "timing", "outcome"}


def test_columns_round_trip_through_json_and_malformed_entries_are_refused() -> None:
    columns = result_columns([("k", float)], [])
    assert columns_from_json([c.to_json() for c in columns]) == columns
    with pytest.raises(ValueError, match="lacks name, role or type"):
        columns_from_json([{"name": "x", "role": "key"}])


@pytest.mark.parametrize(
    ("tasks", "estimators"), [([("k", float)], [("k", float)]), ([("seed", int)], []), ([], [("group", str)])]
)
def test_a_name_that_would_make_two_columns_is_refused(tasks: list, estimators: list) -> None:
    with pytest.raises(ValueError, match=r"would name two columns of results\.csv"):
        result_columns(tasks, estimators)


def test_reserved_names_cover_every_column_a_row_always_has() -> None:
    always = {c.name for c in result_columns([], [])}
    assert always <= RESERVED and {"seed", "group", "coord"} <= RESERVED


def test_curve_columns_key_a_row_by_configuration_seed_and_step() -> None:
    columns = curve_columns([("latents", int), ("steps", int)], [("tau", float)])
    by_name = {c.name: c for c in columns}
    keys = [c.name for c in columns if c.role == "key"]
    assert keys[:3] == ["task", "estimator", "biased"] and keys[-1] == "step" and by_name["step"].kind == "step"
    assert {"seed", "train_steps", "lr", "latents", "steps", "tau"} <= set(keys)  # the task's steps is its own
    assert by_name["seconds"].role == "timing" and by_name["eval_iwae"] == Column("eval_iwae", "metric", "float")
    with pytest.raises(ValueError, match=r"would name two columns of curves\.csv"):
        curve_columns([("seed", int)], [])

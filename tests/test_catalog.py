"""The list command's tables show the registry: every task and estimator, one task in full."""

from __future__ import annotations

import io

from rich.console import Console

from rpbench.catalog import estimators_table, task_detail_tables, tasks_table
from rpbench.registry import ESTIMATORS, TASKS, get_task, load_builtins


def render(table: object) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=250, color_system=None).print(table)
    return buffer.getvalue()


def test_list_tables_show_every_registered_name() -> None:
    load_builtins()
    text = render(tasks_table(TASKS)) + render(estimators_table(ESTIMATORS))
    for name in [*TASKS, *ESTIMATORS]:
        assert name in text


def test_a_task_in_full() -> None:
    load_builtins()
    params, capabilities, applies = task_detail_tables(get_task("gaussian"), ESTIMATORS)
    text = render(params)
    assert all(spec.name in text for spec in get_task("gaussian").params)
    assert "reparameterizable" in render(capabilities) or len(capabilities.rows) > 0
    applies_text = render(applies)
    assert "pathwise" in applies_text and "configurations" in applies_text
    assert len(applies.rows) == len(ESTIMATORS)


def test_the_tasks_table_says_which_tasks_rpbench_train_can_train() -> None:
    load_builtins()
    table = tasks_table(TASKS)
    names = list(table.columns[0].cells)
    trains = dict(zip(names, table.columns[4].cells, strict=True))
    assert table.columns[4].header == "train" and trains["gaussian"] == "no"
    assert all(trains[name] == "Adam ascends the ELBO" for name in ("discrete-vae", "bernoulli-vae", "vae"))

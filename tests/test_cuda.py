"""CUDA paths, end to end, for every task family (run where a GPU is visible; skipped elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from rpbench.cli import main
from rpbench.results import RESULTS_FILE
from tests.conftest import exit_code

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

TINY = {
    "gaussian": ["-p", "dim=3", "-p", "fn=cos,step", "-p", "sigma=1", "-p", "k=1"],
    "bernoulli-toy": ["-p", "dim=3", "-p", "logit=0.7"],
    "gamma": ["-p", "dim=3", "-p", "fn=linear,log", "-p", "alpha=0.7"],
    "beta-dist": ["-p", "dim=3", "-p", "fn=quadratic,log", "-p", "a=0.6"],
    "discrete-vae": ["-p", "latents=2", "-p", "categories=3", "-p", "minibatch=4", "-p", "hidden=8"],
    "bernoulli-vae": ["-p", "latents=4", "-p", "minibatch=4", "-p", "hidden=8", "-p", "particles=1,2"],
    "vae": ["-p", "latents=2", "-p", "minibatch=4", "-p", "hidden=8", "-p", "reference=1000", "-p", "particles=1,3"],
}


@pytest.mark.parametrize("task", sorted(TINY))
def test_every_estimator_runs_on_cuda_and_agrees_with_the_truth(task: str, tmp_path: Path) -> None:
    args = [
        "run",
        "-t",
        task,
        *TINY[task],
        "-e",
        "all",
        "-n",
        "2",
        "-K",
        "2000",
        "--repeats",
        "2",
        "--device",
        "cuda",
        "--out",
        str(tmp_path),
        "-q",
    ]
    assert exit_code(args) == 0
    (run_dir,) = list(tmp_path.iterdir())
    table = pd.read_csv(run_dir / RESULTS_FILE)
    assert (table["status"] == "ok").all() and table["device"].str.startswith("cuda").all()
    unbiased = table[~table["biased"] & ~((table["estimator"] == "pathwise") & (table.get("fn") == "step"))]
    assert not unbiased["bias_significant"].any(), unbiased[unbiased["bias_significant"]][["estimator", "group"]]
    assert (table["sec_per_estimate"] > 0).all()


def test_same_seed_same_numbers_on_cuda(tmp_path: Path) -> None:
    tables = []
    for name in ("a", "b"):
        main(
            [
                "run",
                "-e",
                "score,pathwise",
                "-p",
                "fn=cos",
                "-p",
                "sigma=1",
                "-p",
                "k=1",
                "-K",
                "500",
                "--repeats",
                "1",
                "--device",
                "cuda",
                "--out",
                str(tmp_path / name),
                "-q",
            ]
        )
        (run_dir,) = list((tmp_path / name).iterdir())
        tables.append(pd.read_csv(run_dir / RESULTS_FILE)[["estimator", "group", "mean", "variance"]])
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)

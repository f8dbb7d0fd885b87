"""``scripts/bench_limit.py``: its quick mode runs, writes the table and the JSON, and its check of the
limit (K × the limit's gradient = the sum of our K estimates, same noise) holds, and fails for other noise."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench_limit.py"


def load_script() -> ModuleType:
    """scripts/bench_limit.py as a module (registered, as its dataclasses need)."""
    if "bench_limit" in sys.modules:
        return sys.modules["bench_limit"]
    spec = importlib.util.spec_from_file_location("bench_limit", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_limit"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_mode_writes_the_table_and_the_limit_matches_our_estimates(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads((tmp_path / "limit.json").read_text())
    meta, configs = payload["meta"], payload["configurations"]
    assert meta["threads"] == 1 and meta["rounds"] == 3
    assert len(meta["loadavg_start"]) == 3 and meta["versions"]["torch"] == torch.__version__
    estimators = {c["estimator"] for c in configs}
    assert estimators == {"gumbel", "score+loo", "disarm", "pathwise"}
    for c in configs:
        assert c["check"]["max_rel"] < 1e-5, (c["id"], c["check"])  # same noise: one summed gradient = Σ of K
        assert len(c["seconds"]["ours"]) == len(c["seconds"]["limit"]) == len(c["ratios"]) == 3
        assert sum(c["chunks"]) == c["samples"]
        assert c["estimates_per_second"]["ours"] == pytest.approx(c["samples"] / c["ours"]["median"])
        assert c["ratio"]["median"] == pytest.approx(sorted(c["ratios"])[1])
    (rss,) = configs[0]["rss"]  # K = one chunk of the first configuration
    assert rss["samples"] == rss["chunk"] > 20 and rss["peak_mib"] > 50

    lines = (tmp_path / "limit.md").read_text().splitlines()
    assert lines[0].startswith("# Our engine against the limit")
    assert any("load average" in line for line in lines) and any("AMD" in line or "on `" in line for line in lines)
    header = next(i for i, line in enumerate(lines) if line.startswith("| configuration | P |"))
    rows = lines[header + 2 : header + 2 + len(configs)]
    columns = lines[header].count("|")
    assert all(row.count("|") == columns for row in rows), rows
    assert all(("met" in row) for row in rows)
    assert f"{rss['samples']}: " in rows[0]  # the peak-RSS cell of the first configuration


def test_the_check_fails_when_the_limit_sees_other_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    """A negative control: the same check with the limit's noise drawn from another seed must fail."""
    script = load_script()
    (config,) = [c for c in script.configurations(quick=True) if c.id == "dvae-gumbel"]
    task, estimator = script.build(config)
    sizes = [3, 3]  # two chunks, as a cell with several draws them
    same = script.check(task, estimator, sizes, 1, 7)
    assert same["max_rel"] < 1e-5
    drawn = script.limit_noise
    monkeypatch.setattr(script, "limit_noise", lambda task, sizes, batch, seed: drawn(task, sizes, batch, seed + 1))
    other = script.check(task, estimator, sizes, 1, 7)
    assert other["max_rel"] > 1e-2


def test_every_limit_surrogate_is_a_timed_estimator() -> None:
    script = load_script()
    assert {c.estimator for c in script.configurations(quick=False)} <= set(script.LIMIT_SURROGATES)

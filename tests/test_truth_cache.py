"""The on-disk reference cache: a hit draws nothing and changes no number; what the reference depends
on is in its key; a damaged or stale entry is recomputed; the options that steer it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch

import rpbench
from rpbench import truth
from rpbench.registry import get_task
from rpbench.results import META_FILE, RESULTS_FILE
from rpbench.truth_cache import CACHE_ENV, ReferenceCache, Stored, cache_folder, default_folder, reference_key
from tests.conftest import TIMING, exit_code, vae

PARAMS = {"minibatch": 4, "hidden": 16, "latents": 2, "reference": 400}
"""A small Gaussian VAE: never enumerable, so its truth is always a reference (pathwise, n = 8)."""
RUN: dict = {"task": "vae", "estimators": "pathwise", "params": PARAMS, "samples": 20, "repeats": 1}
CLI = ["run", "-t", "vae", "-e", "pathwise", "-K", "20", "--repeats", "1", "-q"]
CLI += [arg for key, value in PARAMS.items() for arg in ("-p", f"{key}={value}")]


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds of the references drawn (at :func:`rpbench.truth.reference_truth`), with the
    in-memory cache emptied first (:func:`new_process` empties it between runs)."""
    monkeypatch.setattr(truth, "_CACHE", {})
    calls: list[str] = []
    real = truth.reference_truth

    def counting(*args: object, **kwargs: object) -> truth.Truth:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        calls.append(result.kind)
        return result

    monkeypatch.setattr(truth, "reference_truth", counting)
    return calls


def new_process() -> None:
    """Forget the references this process holds in memory, as a new run would."""
    truth._CACHE.clear()


def rows(run: rpbench.Run) -> pd.DataFrame:
    return run.results.drop(columns=TIMING)


def entries(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


def test_a_second_run_reads_the_reference_and_gives_identical_rows(drawn: list[str], reference_cache: Path) -> None:
    first = rpbench.run(**RUN)
    assert drawn == ["reference:pathwisex400"]
    assert [p.suffix for p in entries(reference_cache)] == [".pt"]
    assert first.meta["reference_cache"] == {"used": True, "dir": str(reference_cache)}
    new_process()
    second = rpbench.run(**RUN)
    assert drawn == ["reference:pathwisex400"]  # not drawn again
    assert (second.results["truth"] == "reference:pathwisex400").all()
    pd.testing.assert_frame_equal(rows(first), rows(second), check_exact=True)


def test_a_cached_truth_is_bit_identical_to_a_fresh_one(drawn: list[str], reference_cache: Path) -> None:
    cache = ReferenceCache(reference_cache)
    fresh = truth.truth_of(vae("vae", **PARAMS))
    new_process()
    written = truth.truth_of(vae("vae", **PARAMS), cache)
    new_process()
    read = truth.truth_of(vae("vae", **PARAMS), cache)
    assert len(drawn) == 2 and fresh is not None and written is not None and read is not None
    for result in (written, read):
        assert result.kind == fresh.kind and result.se is not None and fresh.se is not None
        for group in fresh.gradient:
            assert result.gradient[group].dtype == fresh.gradient[group].dtype == torch.float64
            assert torch.equal(result.gradient[group], fresh.gradient[group])
            assert torch.equal(result.se[group], fresh.se[group])


VARIANTS: dict[str, Callable[[pytest.MonkeyPatch], dict]] = {
    "task configuration": lambda _: {**RUN, "params": {**PARAMS, "minibatch": 5}},
    "model state": lambda _: {**RUN, "params": {**PARAMS, "model_seed": 1}},
    "total samples": lambda _: {**RUN, "params": {**PARAMS, "reference": 800}},
    "reference estimator": lambda patch: patch.setattr(get_task("vae"), "reference_estimator", ("score", {}, 8)) or RUN,
    "samples per estimate": lambda patch: (
        patch.setattr(get_task("vae"), "reference_estimator", ("pathwise", {}, 4)) or RUN
    ),
    "rpbench version": lambda patch: patch.setattr(rpbench, "__version__", "0.0.0+other") or RUN,
    "torch version": lambda patch: patch.setattr(torch, "__version__", "0.0.0+other") or RUN,
}


@pytest.mark.parametrize("change", VARIANTS)
def test_what_the_reference_depends_on_is_in_its_key(
    change: str, drawn: list[str], reference_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rpbench.run(**RUN)
    new_process()
    rpbench.run(**VARIANTS[change](monkeypatch))
    assert len(drawn) == 2, change  # a miss: drawn again ...
    assert len(entries(reference_cache)) == 2  # ... and cached beside the first


def test_the_key_holds_device_dtype_threads_and_the_full_estimator_configuration() -> None:
    task = vae("vae", **PARAMS)
    key = reference_key(task, "score+ma", {"decay": 0.9}, 8, 400)
    assert key["device"] == "cpu" and key["dtype"] == "torch.float32"
    assert key["threads"] == torch.get_num_threads() and key["estimator_config"] == {"decay": 0.9}
    assert key["config"] == {
        k: v for k, v in task.config.items() if k not in ("hidden2", "dtype", "particles", "kl")
    }  # its seed's configuration: the neutral parameters at their defaults left out (dtype: its own entry)
    other = vae("vae", **PARAMS)
    assert reference_key(other, "score+ma", {"decay": 0.9}, 8, 400) == key  # the same state, the same key
    moved = other.initial_state()  # a copy: the initial state itself is shared by every task of its configuration
    next(iter(moved["decoder"].values())).add_(1e-3)
    other.load_state(moved)  # a state the configuration does not show
    assert reference_key(other, "score+ma", {"decay": 0.9}, 8, 400)["state"] != key["state"]
    json.dumps(key)  # plain values only


def damage_truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def damage_stale(path: Path) -> None:
    payload = torch.load(path, weights_only=True)
    payload["key"] = {**payload["key"], "torch": "0.0.0+other"}
    torch.save(payload, path)


def damage_checksum(path: Path) -> None:
    payload = torch.load(path, weights_only=True)
    payload["gradient"]["encoder"][0] += 1.0
    torch.save(payload, path)


def damage_garbage(path: Path) -> None:
    path.write_bytes(b"not a torch file")


DAMAGES = {
    "truncated to half": (damage_truncated, "is unreadable"),
    "stale key": (damage_stale, "is stale"),
    "checksum": (damage_checksum, "is corrupt (its checksum does not match)"),
    "garbage": (damage_garbage, "is unreadable"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_entry_is_detected_recomputed_and_rewritten(
    damage: str, drawn: list[str], reference_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spoil, problem = DAMAGES[damage]
    first = rpbench.run(**RUN)
    (entry,) = entries(reference_cache)
    written = entry.read_bytes()
    spoil(entry)
    new_process()
    capsys.readouterr()
    second = rpbench.run(**RUN)
    err = capsys.readouterr().err
    assert len(drawn) == 2  # not trusted: drawn again
    assert err.count("\n") == 1 and err.startswith("warning: reference cache: ") and problem in err, err
    assert str(entry) in err and "computing the reference again" in err
    pd.testing.assert_frame_equal(rows(first), rows(second), check_exact=True)
    assert entries(reference_cache) == [entry]  # rewritten in place, no temporary file left
    new_process()
    third = rpbench.run(**RUN)
    assert len(drawn) == 2 and capsys.readouterr().err == ""  # the rewritten entry is trusted again
    pd.testing.assert_frame_equal(rows(first), rows(third), check_exact=True)
    assert entry.read_bytes() == written  # the same reference, the same bytes


def test_no_cache_neither_reads_nor_writes(
    drawn: list[str], reference_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rpbench.run(**RUN)
    before = {p: p.read_bytes() for p in entries(reference_cache)}
    new_process()
    assert exit_code([*CLI, "--no-cache", "--out", str(tmp_path / "results")]) == 0
    assert len(drawn) == 2  # not read: drawn again
    assert {p: p.read_bytes() for p in entries(reference_cache)} == before  # not written
    (run_dir,) = (tmp_path / "results").iterdir()
    meta = json.loads((run_dir / META_FILE).read_text())
    assert meta["reference_cache"] == {"used": False, "dir": None}
    empty = tmp_path / "empty"
    empty.mkdir()
    new_process()
    assert rpbench.run(**RUN, cache=False, out=None).meta["reference_cache"]["used"] is False
    assert list(empty.iterdir()) == [] and len(drawn) == 3


def test_cache_dir_moves_the_cache(drawn: list[str], reference_cache: Path, tmp_path: Path) -> None:
    folder = tmp_path / "new" / "cache"  # created, parents too
    run = rpbench.run(**RUN, cache_dir=folder)
    assert len(entries(folder)) == 1 and entries(reference_cache) == []
    assert run.meta["reference_cache"] == {"used": True, "dir": str(folder)}


BAD_FOLDERS = {
    "a file": lambda root: root / "file.txt",
    "under a file": lambda root: root / "file.txt" / "cache",
}


@pytest.mark.parametrize("where", BAD_FOLDERS)
@pytest.mark.parametrize("how", ["--cache-dir", CACHE_ENV])
def test_a_bad_cache_folder_is_one_line_exit_2_and_no_run_folder(
    where: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file.txt").write_text("not a folder\n")
    folder = BAD_FOLDERS[where](tmp_path)
    args = [*CLI, "--out", str(tmp_path / "results")]
    if how == CACHE_ENV:
        monkeypatch.setenv(CACHE_ENV, str(folder))
    else:
        args += ["--cache-dir", str(folder)]
    capsys.readouterr()
    assert exit_code(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {how} {folder}: ") and "Traceback" not in err, err
    assert not (tmp_path / "results").exists()
    assert (tmp_path / "file.txt").read_text() == "not a folder\n"


def test_no_cache_with_cache_dir_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code([*CLI, "--no-cache", "--cache-dir", str(tmp_path), "--out", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "drop --cache-dir" in err
    assert list(tmp_path.iterdir()) == []


def test_a_resumed_run_uses_the_cache(drawn: list[str], reference_cache: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    assert exit_code([*CLI, "-e", "pathwise,score", "--out", str(out)]) == 0
    assert len(drawn) == 1
    (run_dir,) = out.iterdir()
    results = run_dir / RESULTS_FILE
    complete = pd.read_csv(results)
    last = complete["cell_seed"].iloc[-1]
    complete[complete["cell_seed"] != last].to_csv(results, index=False)  # the last cell never finished
    new_process()
    assert exit_code(["run", "--resume", str(run_dir), "-q"]) == 0
    assert len(drawn) == 1  # the resumed cell's reference came from the cache
    resumed = pd.read_csv(results)
    pd.testing.assert_frame_equal(resumed.drop(columns=TIMING), complete.drop(columns=TIMING), check_exact=True)
    meta = json.loads((run_dir / META_FILE).read_text())
    assert meta["reference_cache"] == {"used": True, "dir": str(reference_cache)} and meta["resumed_utc"]


def test_the_default_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert default_folder() == tmp_path / "mine"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_folder() == tmp_path / "xdg" / "rpbench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_folder() == tmp_path / "home" / ".cache" / "rpbench"


def test_an_unusable_implicit_default_warns_and_runs_without_a_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file.txt").write_text("")
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file.txt"))
    assert cache_folder(None) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: reference cache: ")
    assert "without the reference cache" in err


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), RuntimeError("No space left on device")])
def test_a_failed_write_warns_and_leaves_nothing(
    error: Exception, reference_cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full(*_: object, **__: object) -> None:
        raise error

    monkeypatch.setattr(torch, "save", full)
    stored = Stored("reference:pathwisex400", {"encoder": torch.zeros(3)}, {"encoder": torch.ones(3)})
    ReferenceCache(reference_cache).store({"task": "vae", "samples": 400}, stored)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and "not cached" in err
    assert entries(reference_cache) == []  # the temporary file is gone too


def test_an_entry_round_trips_with_its_key(reference_cache: Path) -> None:
    cache = ReferenceCache(reference_cache)
    stored = Stored("reference:pathwisex400", {"encoder": torch.arange(3.0)}, {"encoder": torch.ones(3)})
    key = {"task": "vae", "samples": 400}
    assert cache.load(key) is None  # a miss, silently
    cache.store(key, stored)
    loaded = cache.load(key)
    assert loaded is not None and loaded.kind == stored.kind
    assert torch.equal(loaded.gradient["encoder"], stored.gradient["encoder"])
    assert cache.load({"task": "vae", "samples": 800}) is None  # another key, another file
    assert cache.path(key).name.startswith("vae-") and cache.path(key) != cache.path({"task": "vae", "samples": 800})


def test_concurrent_writers_and_readers_see_whole_entries_only(
    reference_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = ReferenceCache(reference_cache)
    key = {"task": "vae", "samples": 400}
    stored = Stored("reference:pathwisex400", {"encoder": torch.randn(20_000)}, {"encoder": torch.rand(20_000)})
    cache.store(key, stored)  # there from the start: every read must find a whole entry
    seen: list[Stored | None] = []

    def write() -> None:
        for _ in range(10):
            cache.store(key, stored)

    def read() -> None:
        seen.extend(cache.load(key) for _ in range(40))

    threads = [threading.Thread(target=f) for f in (write, write, write, read, read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert capsys.readouterr().err == ""  # no reader met half a file
    assert len(seen) == 80
    assert all(e is not None and torch.equal(e.gradient["encoder"], stored.gradient["encoder"]) for e in seen)
    assert entries(reference_cache) == [cache.path(key)]  # no temporary file left behind


@pytest.mark.slow
@pytest.mark.dask
def test_references_drawn_on_dask_workers_are_cached_for_a_serial_run(drawn: list[str], reference_cache: Path) -> None:
    pytest.importorskip("distributed")
    fresh = rpbench.run(**RUN, cache=False)
    assert len(drawn) == 1 and entries(reference_cache) == []
    parallel = rpbench.run(**RUN, workers=2)  # drawn in a worker process, which writes the entry
    assert len(entries(reference_cache)) == 1 and parallel.meta["reference_cache"]["used"] is True
    new_process()
    serial = rpbench.run(**RUN)
    assert len(drawn) == 1  # read from the entry the worker wrote
    pd.testing.assert_frame_equal(rows(fresh), rows(parallel), check_exact=True)
    pd.testing.assert_frame_equal(rows(fresh), rows(serial), check_exact=True)

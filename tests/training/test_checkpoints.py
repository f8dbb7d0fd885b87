"""Checkpoint files: a round trip keeps every tensor, point and flag; a damaged file is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rpbench.errors import UsageError
from rpbench.training.checkpoints import checkpoint_path, load_checkpoint, save_checkpoint
from rpbench.training.loop import Checkpoint, Point


def test_a_checkpoint_round_trips_and_replaces_the_previous_one(tmp_path: Path) -> None:
    path = checkpoint_path(tmp_path, 1234)
    assert load_checkpoint(path) is None  # a run that never reached its first point
    generator = torch.Generator().manual_seed(5)
    state = {"theta": {"encoder": {"w": torch.randn(3, 2)}}, "generators": {"noise": generator.get_state()}, "step": 7}
    points = [Point(0, 0.0, float("nan"), -5.0, 0.1, -4.5), Point(7, 1.5, -4.0, -3.0, 0.1, -2.5, "failed", "boom")]
    save_checkpoint(path, Checkpoint({"step": 0}, points[:1]))
    save_checkpoint(path, Checkpoint(state, points, finished=True))
    loaded = load_checkpoint(path)
    assert loaded is not None and loaded.finished and loaded.state["step"] == 7
    assert torch.equal(loaded.state["theta"]["encoder"]["w"], state["theta"]["encoder"]["w"])
    assert torch.equal(loaded.state["generators"]["noise"], generator.get_state())
    assert loaded.points[1] == points[1] and loaded.points[0].step == 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["1234.pt"]  # no temporary file left


@pytest.mark.parametrize("damage", [b"", b"not a checkpoint", None])
def test_a_damaged_checkpoint_is_refused_in_one_line(tmp_path: Path, damage: bytes | None) -> None:
    path = checkpoint_path(tmp_path, 1)
    save_checkpoint(path, Checkpoint({"step": 3}, []))
    path.write_bytes(path.read_bytes()[:50] if damage is None else damage)
    with pytest.raises(UsageError, match=r"1\.pt: the checkpoint is damaged") as caught:
        load_checkpoint(path)
    assert "\n" not in str(caught.value)

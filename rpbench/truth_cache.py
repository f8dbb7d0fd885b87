"""Reference truths on disk: one file per reference, trusted only after its key and checksum are checked.

A reference (:func:`rpbench.truth.reference_truth`) can take minutes at the literature's scale; this
cache keeps it between runs.  An entry is keyed by everything the reference depends on
(:func:`reference_key`): the task's name and the configuration that seeds it
(:func:`rpbench.params.seed_config`), a digest of its measured state (the model's parameters and the
measured data, which a trained state or an ``mnist:PATH`` file decide), the reference estimator and
its full configuration, n, the total samples, the device, its hardware and (on the CPU) torch's
thread count, the dtype, and the rpbench and torch versions.  What was drawn once under a key is
what would be drawn again, so a cached reference is bit for bit the one a fresh run computes.

The file, ``<task>-<hash of the key>.pt``, holds the key itself and a SHA-256 of its tensors.  It is
written to a temporary file in the same folder and moved into place (:func:`os.replace`), so a
reader never sees half a file and concurrent writers (Dask workers drawing the same reference) are
safe: the last one wins, with the same bytes.  An entry that cannot be read, fails its checksum or
holds another key (stale) is never trusted: one warning line goes to stderr and the reference is
computed again and rewritten.  A failure to write only warns: the cache saves time, it is never
needed for a result.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

import rpbench
from rpbench.errors import UsageError, error_text
from rpbench.estimators.base import tree_leaves
from rpbench.params import seed_config
from rpbench.tasks.base import Task

CACHE_ENV = "RPBENCH_CACHE_DIR"
"""The environment variable that moves the default cache folder."""

FORMAT = 1
"""The layout of an entry; a new layout is a new key, so old entries are never misread."""

Key = dict[str, object]


class Stored(NamedTuple):
    """A cached reference: its ``truth`` kind, and its mean and standard error per group."""

    kind: str
    gradient: dict[str, torch.Tensor]
    se: dict[str, torch.Tensor]


def default_folder() -> Path:
    """``$RPBENCH_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/rpbench``, else ``~/.cache/rpbench``."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "rpbench"


def cache_folder(given: str | Path | None) -> Path | None:
    """The folder to cache references in, created and checked: ``given`` (``--cache-dir``), else
    :func:`default_folder`.

    An unusable folder that was asked for (``--cache-dir``, ``$RPBENCH_CACHE_DIR``) is a
    :class:`UsageError`; the implicit default (``~/.cache/rpbench``) that cannot be made only warns,
    and the run goes on without a cache (``None``).
    """
    if given is not None:
        return _usable(Path(given).expanduser(), "--cache-dir")
    folder = default_folder()
    if os.environ.get(CACHE_ENV):
        return _usable(folder, CACHE_ENV)
    try:
        return _usable(folder, "the default cache folder")
    except UsageError as exc:
        warn(f"{exc}; running without the reference cache")
        return None


def _usable(folder: Path, source: str) -> Path:
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{source} {folder}: is a file, not a folder; give a folder (or --no-cache)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"{source} {folder}: cannot create it ({exc.strerror or exc}); give a writable folder (or --no-cache)"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{source} {folder}: not writable; give a writable folder (or --no-cache)")
    return folder


def warn(message: str) -> None:
    """One warning line on stderr."""
    print(f"warning: reference cache: {message}", file=sys.stderr)


def reference_key(task: Task, estimator: str, config: dict[str, object], batch: int, total: int) -> Key:
    """Everything the reference of ``task`` by ``estimator`` (its full ``config``, ``batch`` samples per
    estimate, ``total`` samples) depends on, as plain values (the task must be in its measured state)."""
    device = task.device
    return {
        "format": FORMAT,
        "task": task.name,
        "config": seed_config(task.config, type(task).params),
        "state": state_digest(task),
        "estimator": estimator,
        "estimator_config": dict(config),
        "batch": batch,
        "samples": total,
        "device": str(device),
        "hardware": _hardware(device),
        "threads": torch.get_num_threads() if device.type == "cpu" else None,
        "dtype": str(task.dtype),
        "rpbench": str(rpbench.__version__),
        "torch": str(torch.__version__),
    }


def _hardware(device: torch.device) -> str:
    """What decides the kernels' rounding beyond the versions: the GPU model, or the CPU's ISA."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} {torch.backends.cpu.get_cpu_capability()}"


def state_digest(task: Task) -> str:
    """SHA-256 of the task's measured state: every tensor of ``theta`` and, where the task has one, its
    measured data ``x`` (the VAEs' minibatch), which the configuration alone may not decide."""
    digest = hashlib.sha256()
    data = getattr(task, "x", None)
    for tensor in [*tree_leaves(task.theta), *([data] if isinstance(data, torch.Tensor) else [])]:
        _add(digest, tensor)
    return digest.hexdigest()


def _add(digest: hashlib._Hash, tensor: torch.Tensor) -> None:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    digest.update(f"{flat.dtype}{tuple(tensor.shape)}".encode())
    digest.update(flat.view(torch.uint8).numpy().tobytes())


def checksum(stored: Stored) -> str:
    """SHA-256 of an entry's kind and tensors (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256(stored.kind.encode())
    for part in (stored.gradient, stored.se):
        for group in sorted(part):
            digest.update(group.encode())
            _add(digest, part[group])
    return digest.hexdigest()


@dataclass(frozen=True)
class ReferenceCache:
    """The cache in ``folder`` (created and checked by :func:`cache_folder`)."""

    folder: Path

    def path(self, key: Key) -> Path:
        """The entry of ``key``: ``<task>-<SHA-256 of the key>.pt``."""
        text = json.dumps(key, sort_keys=True, separators=(",", ":"))
        return self.folder / f"{key['task']}-{hashlib.sha256(text.encode()).hexdigest()[:32]}.pt"

    def load(self, key: Key) -> Stored | None:
        """The entry of ``key``; ``None`` where there is none or it cannot be trusted (with a warning)."""
        path = self.path(key)
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            return None
        except Exception as exc:  # truncated, not a torch file, unreadable: recompute
            warn(f"{path} is unreadable ({error_text(exc)[:200]}); computing the reference again")
            return None
        problem = _problem(payload, key)
        if problem:
            warn(f"{path} {problem}; computing the reference again")
            return None
        return Stored(payload["kind"], payload["gradient"], payload["se"])

    def store(self, key: Key, stored: Stored) -> None:
        """Write the entry of ``key`` atomically (a temporary file in the folder, then moved into place)."""
        path = self.path(key)
        on_cpu = Stored(
            stored.kind,
            {g: t.detach().to("cpu").clone() for g, t in stored.gradient.items()},
            {g: t.detach().to("cpu").clone() for g, t in stored.se.items()},
        )
        payload = {"key": key, **on_cpu._asdict(), "checksum": checksum(on_cpu)}
        name = self.folder / f".{path.name}.{secrets.token_hex(8)}.tmp"  # one per writer
        temporary: Path | None = None
        try:
            handle = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask's mode: shareable
            temporary = name
            with os.fdopen(handle, "wb") as file:
                torch.save(payload, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
            temporary = None
        except (OSError, RuntimeError) as exc:  # torch's writer raises RuntimeError on a full disk
            warn(f"cannot write {path} ({getattr(exc, 'strerror', None) or exc}); this reference is not cached")
        finally:
            if temporary is not None:
                temporary.unlink(missing_ok=True)


def _problem(payload: object, key: Key) -> str:
    """Why a loaded entry cannot be trusted for ``key`` (empty: it can)."""
    if not isinstance(payload, dict) or not {"key", "kind", "gradient", "se", "checksum"} <= set(payload):
        return "is not a reference cache entry"
    if payload["key"] != key:
        return "is stale (written under another key)"
    parts = payload["gradient"], payload["se"]
    if not isinstance(payload["kind"], str) or not all(
        isinstance(p, dict) and all(isinstance(t, torch.Tensor) for t in p.values()) for p in parts
    ):
        return "is malformed"
    if checksum(Stored(payload["kind"], *parts)) != payload["checksum"]:
        return "is corrupt (its checksum does not match)"
    return ""

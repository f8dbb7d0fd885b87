"""TeX labels of figures: known symbols in mathtext, everything else as is; wrapping by shown width."""

from __future__ import annotations

import pytest

from rpbench.views.plot_text import (
    escape,
    group_label,
    key_label,
    metric_label,
    setting_label,
    tex_settings,
    visible_length,
    wrap,
)


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("sigma", r"$\sigma$"),
        ("tau", r"$\tau$"),
        ("mu", r"$\mu$"),
        ("lam", r"$\lambda$"),
        ("batch", "$n$"),
        ("samples", "$K$"),
        ("n", "$n$"),
        ("K", "$K$"),
        ("k", "$k$"),  # one letter: math italics
        ("fn", "fn"),
        ("decay", "decay"),
        ("a$b", r"a\$b"),  # never read as math
    ],
)
def test_key_labels(key: str, label: str) -> None:
    assert key_label(key) == label


def test_settings_metrics_and_groups() -> None:
    assert setting_label("tau", "0.5") == r"$\tau$=0.5" and setting_label("fn", "cos") == "fn=cos"
    assert metric_label("variance") == r"$\mathrm{Var}$" and metric_label("snr") == r"$\mathrm{SNR}$"
    assert metric_label("bias") == r"$|\mathrm{bias}|$" and metric_label("eval_elbo") == "eval_elbo"
    assert group_label("mu") == r"$\mu$ gradient" and group_label("encoder") == "encoder gradient"


def test_a_settings_text_gets_symbols_for_its_known_keys() -> None:
    caption = "gaussian: dim=1, mu=1, k=0.5; K=1000, n=1, seed=0, device=cpu"
    assert tex_settings(caption) == r"gaussian: dim=1, $\mu$=1, $k$=0.5; $K$=1000, $n$=1, seed=0, device=cpu"
    assert tex_settings("gumbel (tau=0.5)") == r"gumbel ($\tau$=0.5)"
    assert tex_settings("score+ma (decay=0.5)") == "score+ma (decay=0.5)"
    assert tex_settings("cost $5, x.k=1") == r"cost \$5, x.k=1"  # a dotted name is not a key
    assert escape("$") == r"\$"


def test_wrapping_counts_what_is_shown() -> None:
    assert visible_length(r"$\mathrm{Var}$ vs $\sigma$") == len("Var vs s")
    assert visible_length(r"a \$5") == 4
    text = r"$\mu$=1, $\sigma$=2, fn=quadratic, $k$=0.5"
    lines = wrap(text, 13)
    assert " ".join(lines) == text and all(visible_length(line) <= 13 for line in lines)
    assert lines == [r"$\mu$=1, $\sigma$=2,", "fn=quadratic,", r"$k$=0.5"]
    assert wrap("", 10) == [] and wrap("averyveryverylongword x", 5) == ["averyveryverylongword", "x"]

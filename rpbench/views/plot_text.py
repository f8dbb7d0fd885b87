"""The words of a figure: TeX labels for the known symbols, and text wrapped to a figure's width.

Labels are matplotlib mathtext (``$\\sigma$``), which needs no LaTeX installation::

    key_label("sigma")              # '$\\sigma$'
    setting_label("tau", "0.5")     # '$\\tau$=0.5'
    metric_label("variance")        # '$\\mathrm{Var}$'
    tex_settings("gaussian: mu=1, k=0.5; K=1000, n=1")  # 'gaussian: $\\mu$=1, $k$=0.5; $K$=1000, $n$=1'

A name that is not a known symbol (``fn``, ``decay``, ``eval_elbo``) stays as it is, with any
``$`` escaped so that it is never read as mathtext.
"""

from __future__ import annotations

import re

SYMBOLS: dict[str, str] = {
    "sigma": r"\sigma",
    "tau": r"\tau",
    "mu": r"\mu",
    "eta": r"\eta",
    "beta": r"\beta",
    "alpha": r"\alpha",
    "gamma": r"\gamma",
    "lam": r"\lambda",
    "lambda": r"\lambda",
    "rho": r"\rho",
    "theta": r"\theta",
    "samples": "K",
    "batch": "n",
}
"""Parameter and run-key names written as a symbol (``samples`` and ``batch`` as the captions' K and n);
besides these, every one-letter name (``k``, ``m``, ``K``, ``n``) is set in math italics."""
METRICS: dict[str, str] = {
    "variance": r"$\mathrm{Var}$",
    "variance_per_coord": r"$\mathrm{Var}$ per coordinate",
    "bias": r"$|\mathrm{bias}|$",
    "mse": r"$\mathrm{MSE}$",
    "snr": r"$\mathrm{SNR}$",
}
"""Axis labels of the metrics that have a usual symbol (``bias`` is drawn as |bias|)."""
SETTING = re.compile(r"(?<![\w.$\\])([A-Za-z_]\w*)=")
"""A ``key=`` of a settings text (``mu=1, k=0.5; K=1000``)."""


def escape(text: str) -> str:
    """``text`` as literal mathtext: each ``$`` escaped (nothing else is special outside math)."""
    return text.replace("$", r"\$")


def symbol(key: str) -> str | None:
    """The TeX of a known symbol (``\\sigma``, ``K``), or ``None`` for a name that stays as it is."""
    if key in SYMBOLS:
        return SYMBOLS[key]
    return key if len(key) == 1 and key.isascii() and key.isalpha() else None


def key_label(key: str) -> str:
    """A parameter's name as a label: ``$\\sigma$`` for a known symbol, else the name as is."""
    tex = symbol(key)
    return f"${tex}$" if tex is not None else escape(key)


def setting_label(key: str, value: str) -> str:
    """``key=value`` with the key as :func:`key_label` writes it (``$\\tau$=0.5``, ``fn=cos``)."""
    return f"{key_label(key)}={escape(value)}"


def metric_label(metric: str) -> str:
    """A metric as an axis label: ``$\\mathrm{Var}$``, ``$|\\mathrm{bias}|$``, … or its name."""
    return METRICS.get(metric, escape(metric))


def group_label(group: str) -> str:
    """A parameter group as a phrase: ``$\\mu$ gradient``, ``encoder gradient``."""
    return f"{key_label(group)} gradient"


def tex_settings(text: str) -> str:
    """A settings text (``key=value`` pairs, as captions and estimator labels write them) with each
    known symbol's key in TeX and everything else as is (``$`` escaped)."""

    def key(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"{key_label(name)}=" if symbol(name) is not None else match.group(0)

    return SETTING.sub(key, escape(text))


MATH = re.compile(r"(?<!\\)\$(.*?)(?<!\\)\$")
COMMAND = re.compile(r"\\(?:mathrm|mathit)\{([^}]*)\}|\\[A-Za-z]+|[{}]")


def visible_length(text: str) -> int:
    """About how many characters ``text`` shows: a mathtext command (``\\sigma``) counts as one,
    ``\\mathrm{Var}`` as its three letters, ``$`` and braces as none."""

    def command(match: re.Match[str]) -> str:
        if match.group(1) is not None:  # \mathrm{Var}: its letters
            return match.group(1)
        return "" if match.group(0) in "{}" else "x"  # a brace: nothing; \sigma: one symbol

    def shown(match: re.Match[str]) -> str:
        return COMMAND.sub(command, match.group(1))

    return len(MATH.sub(shown, text).replace(r"\$", "$"))


def wrap(text: str, width: int) -> list[str]:
    """``text`` broken at spaces into lines of at most ``width`` shown characters (a longer word
    stands alone); never inside a ``$…$`` span, which :func:`tex_settings` writes without spaces."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        if line and visible_length(candidate) > width:
            lines.append(line)
            candidate = word
        line = candidate
    return [*lines, line] if line else lines


__all__ = [
    "escape",
    "group_label",
    "key_label",
    "metric_label",
    "setting_label",
    "symbol",
    "tex_settings",
    "visible_length",
    "wrap",
]

"""LaTeX escaping keeps a table ASCII and compilable."""

from __future__ import annotations

from rpbench.views.render_latex import latex_escape


def test_specials_are_escaped_and_the_text_is_ascii() -> None:
    assert latex_escape("score+ma (decay=0.5) & 50% #1 under_score") == (
        r"score+ma (decay=0.5) \& 50\% \#1 under\_score"
    )
    assert latex_escape("1 ± 2 × 3 – ∞ † é") == r"1 $\pm$ 2 $\times$ 3 -- $\infty$ \textsuperscript{\dag} ?"
    assert latex_escape("ασ").isascii()

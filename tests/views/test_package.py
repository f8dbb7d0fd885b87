"""The rule of the views: they read results and never import the registry, tasks, estimators or torch."""

from __future__ import annotations

import subprocess
import sys

MODULES = [
    "loader",
    "labels",
    "numbers",
    "constants",
    "report",
    "report_layout",
    "report_cells",
    "render_markdown",
    "render_latex",
    "render_csv",
    "resolution",
    "final",
    "compare",
    "compare_match",
    "compare_tests",
    "compare_table",
    "plot",
    "plot_text",
    "summary",
]
FORBIDDEN = ["torch", "rpbench.registry", "rpbench.tasks", "rpbench.estimators", "rpbench.metrics", "rpbench.engine"]


def test_importing_every_view_imports_no_measuring_code() -> None:
    imports = "; ".join(f"import rpbench.views.{name}" for name in MODULES)
    found = f"m == f or m.startswith(f + '.') for f in {FORBIDDEN!r}"
    check = f"import sys; {imports}; print(sorted(m for m in sys.modules if any({found})))"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout

"""Views of a run's results: one loader, the console summary, report tables, figures, comparisons.

The rule: views read results files (``results.csv``, ``coords.csv``, ``run.json``) or the
:class:`~rpbench.views.loader.Run` a run returns, and never recompute.  No module here imports the
registry, the tasks, the estimators or torch; the roles and types of the columns come from
``run.json`` (:mod:`rpbench.columns`), never from guessing.
"""

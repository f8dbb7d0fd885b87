"""A history of results across commits: recorded runs in one SQLite file, and their change points.

:mod:`rpbench.history.store` records a run folder into the file (keyed by git commit, machine and
run id; the schema is versioned there), :mod:`rpbench.history.changes` reads a metric's series back
and marks the consecutive runs of one machine whose difference is significant by the statistics of
``rpbench compare`` (:mod:`rpbench.views.compare_tests`).
"""

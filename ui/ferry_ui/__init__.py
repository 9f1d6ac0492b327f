"""Ferry's web UI: workflows, their DAGs, tasks, logs and the data they move (``ferry ui``).

A separate package over Ferry's own models and store API; the operator does not depend on it.
It reads only: the cluster with the user's credentials (or its ServiceAccount in the cluster),
local runs from their history, outputs through ``ferry.Store``.
"""

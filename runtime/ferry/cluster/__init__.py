"""A cluster, seen from a user's machine: ``ferry run --remote`` and ``ferry status``, through kubectl."""

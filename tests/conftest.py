pytest_plugins = ["tests.cluster.fixtures", "tests.operator.fixtures"]

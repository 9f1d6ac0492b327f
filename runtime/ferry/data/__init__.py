"""The data plane: settings, blob references, manifests, the store, transfers and storage backends.

Beside ``ferry.api`` (neither imports the other); above ``ferry.core``."""

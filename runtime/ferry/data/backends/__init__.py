"""Backends: the primitive object operations of each kind of store, picked by URI scheme
(``registry``). Task code uses them through ``ferry.data.store.Store``, which adds manifests,
verification and parallel transfers on top."""

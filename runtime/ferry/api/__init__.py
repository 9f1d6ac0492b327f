"""The contract between the operator and the pods: the Workflow resource, the DAG, the scheduler,
the pod plan and the paths and environment both sides read.

Beside ``ferry.data`` (neither imports the other); above ``ferry.core``. The operator imports this."""

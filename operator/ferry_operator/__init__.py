"""The Ferry operator: watches Workflow resources and runs one pod per task.

It may import ``ferry`` (the shared contract); ``ferry`` never imports it.
"""

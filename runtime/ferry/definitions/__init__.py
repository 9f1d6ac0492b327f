"""What a user writes: tasks, workflows, plugins and the context a task runs in."""

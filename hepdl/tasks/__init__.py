"""Tasks as declarations: each module of this package declares one task (:class:`Task`).

A task says what one entry is, which logical fields a config maps onto the user's branches,
which representations are built (by name, from :mod:`hepdl.represent`), which per-entry
columns the shards carry, what a model predicts (:class:`Classes`), which metric family
judges it and which task-level plots it gets. Nothing else in hepdl or the workflow knows
a task by its name: it reads the declaration (``get_task(meta["task"])``).
"""

from hepdl.plugins import import_submodules
from hepdl.tasks.base import (
    METRIC_FAMILIES,
    TASKS,
    Classes,
    Column,
    Task,
    get_task,
    register_task,
    task_names,
)

import_submodules(__name__)

__all__ = ["METRIC_FAMILIES", "TASKS", "Classes", "Column", "Task", "get_task", "register_task", "task_names"]

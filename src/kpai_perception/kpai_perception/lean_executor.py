"""rclpy's SingleThreadedExecutor without its self-wakes (issue 18).

rclpy's executor wraps every callback in a handler that triggers the executor's own guard
condition twice: once when the entity has been taken ("it can go back on the wait list") and
once when the callback has ended ("the next callback of a mutually exclusive group may run").
Both are for other threads waiting meanwhile. With one thread nobody waits meanwhile, and
the triggers only make the next wait return at once, empty: the executor then rebuilds its
whole wait set in Python a second time per callback.

`LeanExecutor` is that executor with the handler minus those two triggers, nothing else:
- the same wait set, callback groups, tasks and coroutine callbacks (the handler below is
  rclpy's, Jazzy 7.1 and Kilted 9.1, as one code path);
- after a task ends, rclpy builds the next wait set from scratch in the same thread, so an
  entity whose group was busy is waited on again without a wake-up;
- `wake()` from other threads (a node added, a future completed elsewhere, shutdown) still
  triggers the guard condition.
Not for a multi-threaded executor: there the triggers are what lets another thread wait on
the entity again.
"""

from __future__ import annotations

from typing import Any

from rclpy.executors import SingleThreadedExecutor
from rclpy.task import Task

__all__ = ['LeanExecutor']


class LeanExecutor(SingleThreadedExecutor):
    """A single-threaded executor whose callbacks do not wake it again."""

    def _make_handler(self, entity: Any, node: Any, take_from_wait_list: Any) -> Any:
        # mark it so that it is not put on the wait list until taken (as rclpy does)
        entity._executor_event = True

        async def handler(entity: Any, is_shutdown: bool, work_tracker: Any) -> None:
            group = entity.callback_group
            if is_shutdown or (group is not None and not group.beginning_execution(entity)):
                entity._executor_event = False
                return
            with work_tracker:
                call_coroutine = take_from_wait_list(entity)
                entity._executor_event = False
                try:
                    if call_coroutine is not None:
                        await call_coroutine()
                finally:
                    if group is not None:
                        group.ending_execution(entity)

        task = Task(handler, (entity, self._is_shutdown, self._work_tracker), executor=self)
        with self._tasks_lock:
            self._tasks.append((task, entity, node))
        return task

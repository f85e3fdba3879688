"""Dynamic task-graph scheduling with Last-K schedule preemption (model ``task-graph``)."""

"""Prefect 3 flows: thin orchestration over Celery tasks (see ``services/tasks.py``)."""

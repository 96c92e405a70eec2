"""Orchestration: Prefect 3 flows (thin, over Celery tasks) and the library functions they sequence."""

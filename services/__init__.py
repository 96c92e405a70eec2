"""Service layer: settings, database wiring, Celery app, tasks and the ``clustermass`` CLI."""

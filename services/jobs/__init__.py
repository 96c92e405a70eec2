"""Jobs: the work behind Celery tasks. Each takes ids and plain values, opens its own session."""

"""Orchestration: Prefect flows and the library functions they sequence."""

"""Alembic migrations of the clustermass schema (``clustermass db upgrade`` runs them)."""

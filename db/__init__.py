"""Database layer: schema (``tables``), sessions, migrations, the file store and queries.

Import modules, not names: ``from db import tables``.
"""

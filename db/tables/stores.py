"""Where this database's product files are: the file stores it has written to."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from db.tables.base import Base


class Store(Base):
    """A file store (data directory) that products of this database were written to.

    Products hold paths relative to a store; this table remembers which stores those were, so a
    process that looks for files in another store gets told where they are.
    """

    __tablename__ = "stores"
    __table_args__ = (
        {"comment": "File stores (data directories) this database's products were written to"},
    )

    path: Mapped[str] = mapped_column(
        Text, primary_key=True, comment="Absolute path of the store's root, as the writer saw it"
    )
    host: Mapped[str] = mapped_column(
        String(255), default="", server_default="", comment="Host name of the last writer"
    )
    first_used_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="First write (UTC)"
    )
    last_used_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="Latest write (UTC)"
    )

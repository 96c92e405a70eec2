"""Sub-commands of the ``clustermass`` CLI, one module per area (registered in ``cli.main``)."""

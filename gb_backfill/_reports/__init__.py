"""What a run returns: the report types (``reports``), their plots (``plot``) and the compact
HTML tables a notebook shows (``html``)."""

"""What outlives a run: the ledger (``ledger``, what a run calls; ``storage``, its SQLite schema
and queries; ``journal``, the append-only file of marks and its records; ``merging``, one commit
group; ``companions``, the files beside the database; ``ledger_extras``, the tables the way back
in needs) and the failures file (``failures``; ``stored_values``, how it keeps every value)."""

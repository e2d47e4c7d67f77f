"""What a row is and says: its values, Gameball's rules, its request body, its keys.

Nothing here sends, reads files or knows the ledger: ``mapping`` (which column is which),
``values`` (each cell as an exact Gameball value), ``rules`` (the checks, a column at a time),
``warnings`` (about columns, and rows that repeat one another), ``payloads`` (request bodies),
``keys`` (ledger keys from a row's content) and ``loose`` (the same row written otherwise).
"""

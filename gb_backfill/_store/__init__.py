"""What outlives a run: the ledger (``ledger``, its ``journal`` and the ``ledger_extras`` the
way back in needs) and the failures file (``failures``)."""

"""One send, start to end, and its dry run.

In the order a row travels: ``chunks`` (a slice of the input and its rows on their way),
``prepare`` (checked, encoded, keyed, laned; ``sketch`` counts each customer's rows), ``fate``
(what the ledger says of each row), ``dispatch`` (each customer's rows in order), ``lanes/``
(delivery to each kind of endpoint), ``limiter`` and ``rate_control`` (the pace), ``outcomes``
(what an answer means), ``bookkeeping`` (where each row's status is recorded; ``stopping``, how
a run stops), ``progress`` and ``timeline``, ``passes`` (the reads of the input before anything
is sent), and ``run`` (one send) beside ``plan`` (the dry run) and ``makespan`` (how long a
run takes).
"""

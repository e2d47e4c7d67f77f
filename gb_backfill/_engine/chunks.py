"""The rows of a run: a slice of the input (:class:`Chunk`) and one row on its way
(:class:`OutgoingRow`).

A :class:`Chunk` holds its frame until every row in it has its final status, so the failures
file can be written with each row's original columns. An :class:`OutgoingRow` is one valid row
on its way to Gameball: which lane carries it, its request body, and what happened to it so far.
(A Gameball batch job carries many outgoing rows; "job" means only such a job.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import pandas as pd

from .._rows.keys import RowKeys
from .._rows.loose import LooseKeys
from .._vocabulary import Lane
from .outcomes import Outcome

__all__: list[str] = []


class NotSent(NamedTuple):
    """A row that ends without being sent, as the failures file will show it."""

    local: int  #: its position in its chunk
    status: str
    code: str | None
    message: str | None
    http_status: int | None
    attempts: int
    key_index: int | None  #: its index in the chunk's keys (None: no key)


@dataclass(eq=False, slots=True)
class Chunk:
    """One slice of the input, kept until every row in it has its final status."""

    frame: pd.DataFrame
    offset: int
    keys: RowKeys | None = None
    natural_keys: bool = False
    #: each keyed row's loose key and form mask (with a ledger; see :mod:`gb_backfill._rows.loose`)
    loose: LooseKeys | None = None
    pending: int = 0
    not_sent: list[NotSent] = field(default_factory=list)
    #: each key's content hash (16 bytes each, in one string) and occurrence, made on demand
    _shown: tuple[bytes, list[int]] | None = None

    def shown_key(self, index: int) -> tuple[bytes, int]:
        """Row ``index``'s ``gb_key`` as the ledger keeps it with a request: its content hash
        and occurrence (-1: a ``row_key=`` key, shown as itself)."""
        assert self.keys is not None
        if self._shown is None:
            occurrence = [-1] * len(self.keys.keys) if self.natural_keys else None
            self._shown = (
                self.keys.content.tobytes(),
                occurrence if occurrence is not None else self.keys.occurrence.tolist(),
            )
        content, occurrences = self._shown
        return content[16 * index : 16 * index + 16], occurrences[index]

    def key_text(self, index: int | None) -> str | None:
        if index is None or self.keys is None:
            return None
        if self.natural_keys:
            return self.keys.keys[index].hex()
        return self.keys.text(index)


@dataclass(eq=False, slots=True)
class OutgoingRow:
    """One row on its way to Gameball."""

    chunk: Chunk
    local: int
    customer: str
    body: bytes
    token: str | None
    key_index: int
    lane: Lane = Lane.EVENTS  #: the lane that delivers it
    plain: bool = True  #: a batch job could carry it (no email, mobile or session token)
    job_id: int | None = None  #: the batch job that carries it, once Gameball named it
    retry_due: bool = False  #: refused in a way retried, its next request not yet made
    attempts: int = 0  #: tries counted against the retry policy (a 429 or 2001 is none)
    requests: int = 0  #: requests made for it in this run, refused ones included
    begun: bool = False  #: the ledger holds its in-flight mark (cleared while it waits to retry)
    in_flight: bool = False  #: a request is out: an error now may follow a processed request
    recorded: bool = False  #: its final status is recorded
    last: Outcome | None = None  #: the answer to its latest request, if any

    @property
    def in_ledger(self) -> bool:
        """The ledger has a record of it: marked now, or unmarked while it waits to retry."""
        return self.begun or self.requests > 0

    @property
    def key(self) -> bytes:
        assert self.chunk.keys is not None
        return self.chunk.keys.keys[self.key_index]

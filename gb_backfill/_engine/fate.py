"""One rule for a row's fate: what a send does with a row, given the ledger and the input.

The live run's admission (:mod:`gb_backfill._engine.run`), the dry run
(:mod:`gb_backfill._engine.plan`) and the reward preview (:mod:`gb_backfill._preview.run`) all ask
:class:`Judge`, so what the dry run plans and the preview quotes is what the live run sends. A row
is judged by its key's word in the ledger (see :mod:`gb_backfill._rows.keys`: a row that carries a
``gb_key`` from a failures file keeps it, as written or edited):

* sent (or settled by hand as arrived) → ``SKIP``, whatever was edited;
* in flight at a crash, or ``unknown`` → ``HOLD`` (not sent, named in the report), unless
  ``retry_unknown=True``, whatever was edited;
* invalid now → ``INVALID``; and a failures file's invalid row sent again with the very cells it
  had (its reader's problem is not in the file) stays ``INVALID``;
* failed for good, unchanged → ``FAILED`` again without a request; edited (a fix) → ``SEND``;
* failed and retryable, aborted, marked not arrived, invalid before (and fixed now), or unknown
  to the ledger → ``SEND``; but a row the ledger does not know that looks like a row an earlier
  run sent, written differently (see :mod:`gb_backfill._rows.loose`), is ``CHANGED``: a live run
  refuses to start (``ChangedRowsError``) unless ``resend_changed=True``.

**Copies of one row in one input** (an export and its failures file concatenated, two failures
files together): the same key twice. When the input carries ``gb_key`` values, a first pass
collects them (:func:`~gb_backfill._engine.passes.find_folds`); a row without one whose key a
carried row has is a copy of that row, and the carried one (the row as the user fixed it)
speaks for it. Of the carried copies, the first the rule sends is sent; every other copy is
``FOLD``: ``skipped``, counted as folded in the report. So a key is sent at most once per run.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from .._config import Settings
from .._rows.loose import NAME_BIT
from .._store.ledger import Ledger
from .._store.storage import LedgerEntry
from .._vocabulary import FailureCode, LedgerStatus
from .prepare import Prepared

__all__: list[str] = []


class Fate(enum.Enum):
    """What a send does with one row."""

    SEND = "send"  #: a request goes out
    SKIP = "skip"  #: sent before, per the ledger: ``skipped``
    FOLD = "fold"  #: a copy of a row met elsewhere in this input: ``skipped``, folded
    HOLD = "hold"  #: may have arrived before: ``unknown``, not sent
    FAILED = "failed"  #: failed for good before, and unchanged: ``failed``, not sent
    INVALID = "invalid"  #: breaks a rule: ``invalid``
    CHANGED = "changed"  #: looks like a row sent before, written differently


def fate_of(
    entry: LedgerEntry | None,
    *,
    valid: bool,
    edited: bool = False,
    unchanged_invalid: bool = False,
    looks_sent: bool = False,
    retry_unknown: bool = False,
) -> Fate:
    """The rule (see the module docstring) for one row: ``entry`` is its key's ledger entry,
    ``edited`` whether it carried a key made from other content, ``unchanged_invalid`` whether
    it is a failures file's invalid row as it was, ``looks_sent`` whether its loose identity was
    sent under another key (with ``resend_changed``, pass False)."""
    status = None if entry is None else LedgerStatus(entry.status)
    if status is LedgerStatus.SENT:
        return Fate.SKIP
    if status is not None and status.may_have_arrived and not retry_unknown:
        return Fate.HOLD
    if not valid or unchanged_invalid:
        return Fate.INVALID
    if status is LedgerStatus.FAILED and entry is not None and not entry.retryable:
        return Fate.SEND if edited else Fate.FAILED
    if status is None and looks_sent:
        return Fate.CHANGED
    return Fate.SEND


class Folds:
    """The keys an input's rows carry (``gb_key``), and which of them this run has judged.

    Keys are kept as a sorted array (16 bytes each), so memory follows the carried rows only.
    """

    _UNSEEN, _JUDGED, _SENT = 0, 1, 2

    def __init__(self, keys: Iterable[bytes] | npt.NDArray[np.void]) -> None:
        self.keys = np.unique(keys if isinstance(keys, np.ndarray) else _as_array(list(keys)))
        self.state = np.zeros(len(self.keys), dtype=np.int8)
        self.folded = 0

    def fresh(self) -> Folds:
        """The same keys, none judged yet (for another pass over the input)."""
        return Folds(self.keys)

    def _where(self, key: bytes) -> int | None:
        at = int(self._found(_as_array([key]))[0])
        return at if at >= 0 else None

    def among(self, keys: list[bytes]) -> list[int]:
        """The indexes of ``keys`` some row of the input carries."""
        found = self._found(_as_array(keys))
        return np.flatnonzero(found >= 0).tolist()

    def _found(self, wanted: npt.NDArray[np.void]) -> npt.NDArray[np.int64]:
        """Where each of ``wanted`` is among the keys, or -1."""
        if not len(self.keys) or not len(wanted):
            return np.full(len(wanted), -1, dtype=np.int64)
        at = np.searchsorted(self.keys, wanted).clip(max=len(self.keys) - 1)
        return np.where(self.keys[at] == wanted, at, -1)

    def apply(self, key: bytes, *, carried: bool, fate: Fate) -> Fate:
        """The fate of a row with ``key``, once copies of it in this input are counted."""
        at = self._where(key)
        if at is None:
            return fate
        state = self.state[at]
        if not carried or state == self._SENT or (state == self._JUDGED and fate is not Fate.SEND):
            # A copy without the key speaks for nobody; a later copy adds nothing.
            self.folded += 1
            return Fate.FOLD
        self.state[at] = self._SENT if fate is Fate.SEND else self._JUDGED
        return fate


def _as_array(keys: list[bytes]) -> npt.NDArray[np.void]:
    # Raw 16-byte values: a bytes ("S16") array would drop a key's trailing zero bytes, and
    # such a key (one in 256) would then never be found, its copies never folded.
    return np.frombuffer(b"".join(keys), dtype="V16")


@dataclass(slots=True)
class Verdicts:
    """The fate of each row of one prepared chunk. Most rows are plain (``SEND`` when valid,
    ``INVALID`` when not), and are not listed one by one: ``other`` holds the rest."""

    valid: int  #: rows in ``Prepared.rows``
    invalid_rows: int  #: rows in ``Prepared.worst``
    #: the rows whose fate is not the plain one, by key index (a valid row's index, then
    #: ``valid + n`` for the n-th invalid row), with their ledger entries
    other: dict[int, tuple[Fate, LedgerEntry | None]] = field(default_factory=dict)
    #: valid rows judged ``CHANGED``: row index -> the form mask of the row sent before
    changed: dict[int, int] = field(default_factory=dict)

    def row(self, index: int) -> Fate:
        """The fate of valid row ``index``."""
        found = self.other.get(index)
        return Fate.SEND if found is None else found[0]

    def invalid(self, n: int) -> Fate:
        found = self.other.get(self.valid + n)
        return Fate.INVALID if found is None else found[0]

    @property
    def rows(self) -> list[Fate]:
        """Each valid row's fate (``Prepared.rows`` order)."""
        return [self.row(index) for index in range(self.valid)]

    def held(self) -> list[int]:
        """The indexes of valid rows that are not sent, in order."""
        return sorted(
            i for i, (fate, _) in self.other.items() if i < self.valid and fate is not Fate.SEND
        )

    def counts(self) -> Counter[Fate]:
        counts = Counter({Fate.SEND: self.valid, Fate.INVALID: self.invalid_rows})
        for index, (fate, _) in self.other.items():
            counts[Fate.SEND if index < self.valid else Fate.INVALID] -= 1
            counts[fate] += 1
        return +counts


class Judge:
    """Judges prepared chunks in input order by :func:`fate_of`, with the ledger's word and
    the input's copies (:class:`Folds`). ``check_changed``: also find ``CHANGED`` rows (the
    live run does so in a first pass over the whole input before it sends anything).

    Only rows something is known of (a ledger entry, a carried key, a key the input carries, a
    loose match) are judged one by one; the rest are plain, so a first run costs nothing per
    row here.
    """

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger | None,
        folds: Folds | None,
        *,
        check_changed: bool,
    ) -> None:
        self.settings, self.ledger, self.folds = settings, ledger, folds
        self.loose = (
            check_changed
            and ledger is not None
            and not settings.resend_changed
            and ledger.has_loose_keys()
        )

    @property
    def folded(self) -> int:
        return 0 if self.folds is None else self.folds.folded

    def __call__(self, prepared: Prepared) -> Verdicts:
        rows, invalid_at = prepared.rows, prepared.invalid_positions
        verdicts = Verdicts(valid=len(rows), invalid_rows=len(invalid_at))
        keyed = prepared.chunk.keys
        if keyed is None or not keyed.keys:
            return verdicts
        keys = keyed.keys
        known = self.ledger.lookup(keys) if self.ledger is not None else {}
        looks = self._looks_sent(prepared, known)
        known_at = [i for i, key in enumerate(keys) if key in known] if known else []
        special = {*known_at, *looks}
        if keyed.carried is not None:
            special.update(np.flatnonzero(keyed.carried).tolist())
        if self.folds is not None:
            special.update(self.folds.among(keys))
        if not special:
            return verdicts
        # Input order, valid and invalid rows together: the first copy of a key comes first.
        local = {
            i: rows[i].local if i < len(rows) else int(invalid_at[i - len(rows)]) for i in special
        }
        for index in sorted(special, key=local.__getitem__):
            key, valid = keys[index], index < len(rows)
            entry = known.get(key)
            fate = fate_of(
                entry, valid=valid, edited=keyed.flag("changed", index),
                unchanged_invalid=keyed.flag("unchanged_invalid", index),
                looks_sent=index in looks,
                # An order that may have arrived is sent again: Gameball refuses it if it did.
                retry_unknown=self.settings.retry_unknown
                or (valid and rows[index].lane.carries_orders),
            )  # fmt: skip
            if self.folds is not None:
                fate = self.folds.apply(key, carried=keyed.flag("carried", index), fate=fate)
            if fate is not (Fate.SEND if valid else Fate.INVALID) or entry is not None:
                verdicts.other[index] = (fate, entry)
        verdicts.changed = {i: looks[i] for i in looks if verdicts.row(i) is Fate.CHANGED}
        return verdicts

    def _looks_sent(self, prepared: Prepared, known: dict[bytes, LedgerEntry]) -> dict[int, int]:
        """Valid rows the ledger does not know whose loose identity a row sent (or perhaps
        sent) has: key index -> that row's form mask."""
        chunk = prepared.chunk
        if not self.loose or self.ledger is None or chunk.keys is None or chunk.loose is None:
            return {}
        looses, former, keys = chunk.loose.keys, chunk.loose.former, chunk.keys.keys
        new = [i for i in range(len(prepared.rows)) if keys[i] not in known]
        if not new:
            return {}
        # A ledger written before event names were folded keeps the name as written.
        asked = [looses[i] for i in new] + [former[i] for i in new if i in former]
        forms = self.ledger.loose_forms(asked)
        # Such a row was sent with this very name: its spelling is no difference to show.
        found = {i: forms[former[i]] | NAME_BIT for i in new if former.get(i) in forms}
        return found | {i: forms[looses[i]] for i in new if looses[i] in forms}


def carries_keys(settings: Settings, columns: Iterable[object]) -> bool:
    """Whether rows of an input with ``columns`` can carry keys (a ``gb_key`` column, rows
    keyed by content), and so be copies of one another."""
    return not settings.row_key and "gb_key" in list(columns)


def unchanged_invalid(frame: pd.DataFrame, local: int) -> tuple[str, str]:
    """The code and message of a failures file's invalid row sent again as it was."""
    was = {
        name: frame[name].iloc[local] if name in frame.columns else None
        for name in ("gb_error_code", "gb_error_message")
    }
    code = was["gb_error_code"] if isinstance(was["gb_error_code"], str) else None
    known = code in {str(c) for c in FailureCode}
    reason = was["gb_error_message"] if isinstance(was["gb_error_message"], str) else "see gb_key"
    return (
        code if known and code is not None else FailureCode.INVALID_UNCHANGED,
        f"sent again unchanged since it was invalid, so still invalid: {reason}",
    )

"""The words gb-backfill uses for what happens to rows, as enums, in one place.

Every status, verdict and code a row can get is defined here, and the rest of the package (the
ledger, the CLI, the plan, the progress bar, the reports) names them by these enums, never by
loose strings. The values are stable: they are written to failures files, ledgers and reports
(a ``StrEnum`` equals its value, so a report's counts are keyed by the plain strings users
filter on).

* :class:`Status`: how a row of a send ended (every row ends in exactly one).
* :class:`LedgerStatus`: what the ledger records of a row.
* :class:`FailureCode`: why a row broke Gameball's event rules (``invalid`` rows).
* :class:`WarningCode`: columns whose values are valid but likely not what was meant.
* :class:`SendErrorCode`: why a row that was valid was not sent.
* :class:`Verdict`: what one answer means for its rows.
* :class:`Lane`: which endpoint carries a row.
* :class:`QuoteOutcome`: what the reward preview learned of a sampled row.
"""

from __future__ import annotations

from enum import Enum, StrEnum

__all__ = ["STATUSES", "FailureCode", "SendErrorCode", "Status", "WarningCode"]


class Status(StrEnum):
    """How a row ended; every input row ends in exactly one of these."""

    SENT = "sent"  #: Gameball accepted it in this run
    SKIPPED = "skipped"  #: sent by an earlier run, per the ledger
    INVALID = "invalid"  #: broke Gameball's event rules; never sent
    FAILED = "failed"  #: Gameball refused it, or retries ran out (gb_error_code says which)
    UNKNOWN = "unknown"  #: may or may not have been processed; not resent unless asked
    ABORTED = "aborted"  #: not attempted, because the run stopped


#: The statuses, in the order reports list them.
STATUSES = tuple(status.value for status in Status)


class LedgerStatus(StrEnum):
    """What the ledger records of a row. The order is the journal's (see
    :mod:`gb_backfill._store.journal`)."""

    IN_FLIGHT = "in_flight"  #: its request went out, no outcome recorded (a crash)
    SENT = "sent"
    FAILED = "failed"  #: with ``retryable``
    UNKNOWN = "unknown"
    ABORTED = "aborted"  #: not sent because the run stopped; retryable
    #: broke Gameball's rules when a run met it (kept apart, see
    #: :mod:`gb_backfill._store.ledger_extras`): a fixed copy that carries its key is sent
    INVALID = "invalid"

    @property
    def may_have_arrived(self) -> bool:
        """True when Gameball has, or may have, processed the row."""
        return self in (LedgerStatus.SENT, LedgerStatus.IN_FLIGHT, LedgerStatus.UNKNOWN)


class FailureCode(StrEnum):
    """Stable codes for the ways a row can break Gameball's event rules."""

    CUSTOMER_ID_MISSING = "customer_id_missing"
    CUSTOMER_ID_EMPTY = "customer_id_empty"
    CUSTOMER_ID_TYPE = "customer_id_type"
    CUSTOMER_ID_INEXACT = "customer_id_inexact"
    CUSTOMER_ID_WHITESPACE = "customer_id_whitespace"
    EVENT_NAME_MISSING = "event_name_missing"
    EVENT_NAME_EMPTY = "event_name_empty"
    EVENT_NAME_TYPE = "event_name_type"
    EVENT_NAME_WHITESPACE = "event_name_whitespace"
    METADATA_TYPE = "metadata_type"
    METADATA_NOT_FINITE = "metadata_not_finite"
    METADATA_OUT_OF_RANGE = "metadata_out_of_range"
    METADATA_MIXED_TIMEZONES = "metadata_mixed_timezones"
    EMAIL_MALFORMED = "email_malformed"
    MOBILE_MALFORMED = "mobile_malformed"
    SESSION_TOKEN_TYPE = "session_token_type"
    SESSION_TOKEN_MALFORMED = "session_token_malformed"
    TEXT_NOT_UNICODE = "text_not_unicode"
    CSV_EXTRA_FIELDS = "csv_extra_fields"
    CSV_MISSING_FIELDS = "csv_missing_fields"
    DTYPE_UNCONVERTIBLE = "dtype_unconvertible"
    TIMESTAMP_TOO_PRECISE = "timestamp_too_precise"
    #: a failures file's invalid row sent again unchanged (its reader's problem is not in the file)
    INVALID_UNCHANGED = "invalid_unchanged"
    # orders (see :mod:`gb_backfill._rows.orders`)
    ORDER_ID_MISSING = "order_id_missing"
    ORDER_ID_EMPTY = "order_id_empty"
    ORDER_ID_TYPE = "order_id_type"
    ORDER_ID_INEXACT = "order_id_inexact"
    ORDER_ID_WHITESPACE = "order_id_whitespace"
    ORDER_DATE_MISSING = "order_date_missing"
    ORDER_DATE_INVALID = "order_date_invalid"  #: not a date, or not one Gameball can take
    ORDER_DATE_FUTURE = "order_date_future"
    ORDER_DATE_TOO_PRECISE = "order_date_too_precise"  #: finer than the millisecond
    TOTAL_PAID_MISSING = "total_paid_missing"
    ORDER_AMOUNT_TYPE = "order_amount_type"  #: a total that is not a number
    ORDER_AMOUNT_NEGATIVE = "order_amount_negative"
    ORDER_AMOUNT_NOT_FINITE = "order_amount_not_finite"
    ORDER_FIELD_TYPE = "order_field_type"  #: channel (not a listed one), cartId or guest
    EXTRA_NOT_TEXT = "extra_not_text"  #: an ``extra`` value that is not a string


class WarningCode(StrEnum):
    """Stable codes for columns whose values are valid but likely not what was meant."""

    NUMBER_AS_TEXT = "number_as_text"
    BOOL_AS_TEXT = "bool_as_text"
    TIMESTAMP_AS_TEXT = "timestamp_as_text"
    MIXED_OFFSETS = "mixed_offsets"
    ID_MIXED_WIDTHS = "id_mixed_widths"
    #: one event name in several spellings that differ only in case, spaces or width
    EVENT_NAME_VARIANTS = "event_name_variants"
    #: customer ids in several spellings that differ only in case, spaces or width
    ID_VARIANTS = "id_variants"
    #: about rows, not a column: valid rows that repeat an earlier row in every column sent
    DUPLICATE_ROWS = "duplicate_rows"


class SendErrorCode(StrEnum):
    """Stable ``gb_error_code`` values for rows that were not sent, like :class:`FailureCode`.

    An HTTP answer that failed a row gives ``http_<status>`` (``http_404``, ``http_429``...);
    invalid rows carry their :class:`FailureCode`.
    """

    CONNECT_ERROR = "connect_error"  #: not sent: no connection
    TIMEOUT = "timeout"  #: sent, no answer in time: may have been processed
    CONNECTION_LOST = "connection_lost"  #: sent, connection lost: may have been processed
    INTERRUPTED = "interrupted"  #: in flight when the run was cut off
    ERROR = "error"  #: an unexpected error while its request was out
    ABORTED = "aborted"  #: not attempted: the run stopped
    UNKNOWN_EARLIER = "unknown_earlier"  #: an earlier run may have sent it
    BATCH_ITEM_FAILED = "batch_item_failed"  #: a batch job listed it as failed
    BATCH_UNLISTED = "batch_unlisted"  #: its job ended (or failed) without listing it
    BATCH_UNCONFIRMED = "batch_unconfirmed"  #: its job was not confirmed within job_timeout
    BATCH_JOB_LOST = "batch_job_lost"  #: its job's status could not be read (server forgot it)
    BATCH_NO_JOB_ID = "batch_no_job_id"  #: the job was accepted without an id
    #: its job had not ended when the run stopped: the next run with the ledger asks about it
    BATCH_JOB_OPEN = "batch_job_open"
    NOT_ARRIVED = "not_arrived"  #: marked by hand as not arrived (``settle``): sent again once
    #: not an error: a ``sent`` order Gameball refused as a duplicate, so it was already there
    ALREADY_THERE = "already_there"


class Verdict(Enum):
    """What one answer means for the rows it carried."""

    SENT = "sent"  #: accepted
    #: the reward preview's answer for a customer Gameball does not know (a 404 with its code
    #: 7000): an answer, final for the row, but nothing was sent or quoted
    NOT_FOUND = "not_found"
    RETRY = "retry"  #: surely not processed: safe to send again
    FAILED = "failed"  #: refused for good
    UNKNOWN = "unknown"  #: may have been processed: not sent again on its own
    AUTH = "auth"  #: the keys were refused: the run stops

    @property
    def answered(self) -> bool:
        """True when the request was answered for good without a failure (``SENT``, or the
        preview's ``NOT_FOUND``): no retry, and a streak of failures ends."""
        return self in (Verdict.SENT, Verdict.NOT_FOUND)


class Lane(StrEnum):
    """The endpoint that carries a row (see :func:`~gb_backfill._gameball.lane_for`)."""

    EVENTS = "events"  #: one request per row
    BATCH = "batch"  #: asynchronous jobs of many rows
    ORDERS = "orders"  #: one order per request
    BATCH_ORDERS = "batch_orders"  #: asynchronous jobs of many orders

    @property
    def carries_orders(self) -> bool:
        """True for the lanes that send orders, which Gameball refuses twice (idempotent)."""
        return self in (Lane.ORDERS, Lane.BATCH_ORDERS)


class QuoteOutcome(StrEnum):
    """What the reward preview learned of a sampled row (``PreviewReport.quotes["gb_quote"]``)."""

    QUOTED = "quoted"  #: Gameball quoted it
    #: answered: the customer does not exist yet (a live send would create it)
    CUSTOMER_NOT_FOUND = "customer_not_found"
    FAILED = "failed"  #: the quote failed (``gb_error`` says why)
    NOT_ASKED = "not_asked"  #: the preview stopped before asking

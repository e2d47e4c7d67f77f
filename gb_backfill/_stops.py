"""A send or preview that stopped before its end: one error type, raised in one place.

A run that stops (Ctrl-C, SIGTERM or a cancelled task; Gameball rejecting the keys; the same
failure on every request; the ledger, a file or a bug) still finishes its bookkeeping: every row
gets a status, the failures file is written and the ledger closed. Then :func:`raise_for` raises
:class:`RunStopped` (or the subclass that says why) from what stopped it, carrying the report of
the run so far::

    try:
        report = gb_backfill.send(df, ledger="events.ledger", failures_path="failed.parquet")
    except gb_backfill.RunStopped as stopped:
        stopped.report.failures  # every row not sent, with its status

The sync faces, stopped by Ctrl-C, let the ``KeyboardInterrupt`` go on, with the
:class:`Interrupted` message as its own (one line: the counts and where the rows not sent are).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ._errors import GameballError
from ._preview.report import PreviewReport
from ._reports.send import SendReport
from ._reports.words import WORTH_RETRYING
from ._vocabulary import SendErrorCode

if TYPE_CHECKING:  # not at run time: it imports asyncio, which `import gb_backfill` defers
    from ._engine.stopping import Stop

__all__ = ["AuthenticationError", "Interrupted", "RepeatedFailureError", "RunStopped"]

#: What a stopped run reports: the send's or the preview's report, every row with a status.
StoppedReport = SendReport | PreviewReport


class RunStopped(GameballError):
    """A send or preview stopped before its end; ``report`` is the run so far (every row has
    a status, and the rows not sent are in its failures file). Raised from what stopped it
    (``__cause__``: the ledger's error, a full disk, a bug, the cancellation)."""

    def __init__(
        self, message: str, *, report: StoppedReport, option: str | None = None, **values: Any
    ) -> None:
        super().__init__(message, option=option, **values)
        self.report: StoppedReport = report


class Interrupted(RunStopped):
    """Ctrl-C, SIGTERM or a cancelled task stopped the run: in-flight requests finished (at
    most ``timeout`` seconds, or ``job_timeout`` for posted jobs), every row has a status."""

    def __init__(
        self, message: str, *, report: StoppedReport, ledger: str | os.PathLike[str] | None = None
    ) -> None:
        super().__init__(message, report=report)
        self.ledger = ledger

    def summary(self) -> str:
        """One line for a terminal: what was done, and where the rows not sent are."""
        return f"gb-backfill: {self}"


def _interrupted_text(report: StoppedReport, ledger: str | os.PathLike[str] | None) -> str:
    """What an interrupted run did, of how many rows, and where the rows not sent are: the
    exception's message (a script's traceback ends with it), and the command line's last line."""
    if isinstance(report, PreviewReport):
        return (
            f"the preview was interrupted: {report.quoted:,} of {report.sampled:,} sampled rows "
            "quoted; nothing was sent"
        )
    done = ", ".join(f"{count:,} {status}" for status, count in report.counts.items() if count)
    if report.failures_path is not None:
        where = f"rows not sent are in {report.failures_path}"
    elif report.failures_in_memory is not None and report.failures_in_memory.empty:
        where = "every row was sent"
    else:
        where = "no failures_path= was given, so the rows not sent were written nowhere"
    if ledger is not None:
        where += f"; the ledger {ledger} knows every row sent: run again with it"
    return f"the send was interrupted: {done or 'no rows'} of {report.rows:,} rows; {where}"


class AuthenticationError(RunStopped):
    """Gameball rejected the keys (401 or 403), so the run stopped before burning more rows.

    ``status_code`` is the answer's; in ``report`` the row that met the error is ``failed`` and
    every row not yet attempted is ``aborted``. The keys themselves never appear in the message.
    """

    def __init__(
        self, message: str, *, status_code: int, report: StoppedReport,
        option: str | None = None, **values: Any,
    ) -> None:  # fmt: skip
        super().__init__(message, report=report, option=option, **values)
        self.status_code = status_code


class RepeatedFailureError(RunStopped):
    """The same failure ended several requests in a row with no success, so the run stopped.

    A wrong base URL, nothing listening, or a server that is down would fail every row alike.
    Rows failed by the run stay retryable in the ledger, and rows whose requests went out
    without an answer are ``unknown`` (the message says how many of each).
    """


def raise_for(
    report: StoppedReport, stop: Stop | None, *, ledger: str | os.PathLike[str] | None = None
) -> None:
    """Raise what stopped the run that made ``report`` (nothing when it did not stop)."""
    if stop is None:
        return
    what = "run" if isinstance(report, SendReport) else "preview"
    if stop.interrupted:
        raise Interrupted(_interrupted_text(report, ledger), report=report, ledger=ledger) from (
            stop.error
        )
    if stop.error is not None:
        error = stop.error
        if isinstance(error, GameballError) and error.template is not None:
            # Said in the caller's terms: the cause names its options as it did.
            stopped = RunStopped(error.template, report=report, option=error.option,
                                 **error.values)  # fmt: skip
        else:
            stopped = RunStopped(cause_text(error), report=report)
        written = report.failures_path if isinstance(report, SendReport) else None
        where = f"; rows not sent are in {written}" if written else ""
        stopped.add_note(f"gb-backfill: the {what} stopped; {report!r}{where}")
        raise stopped from error
    if stop.refused is not None:
        refused = stop.refused
        after = (
            f"{report.aborted:,} rows were not attempted"
            if isinstance(report, SendReport)
            else f"{report.quoted:,} quotes were answered before it"
        )
        raise AuthenticationError(
            "Gameball rejected the keys (HTTP {status}: {said}); {after}. Check the API key and "
            "secret key ({api_key=} and {secret_key=}, or GAMEBALL_API_KEY and "
            "GAMEBALL_SECRET_KEY) and {base_url=}.",
            status_code=refused.http_status or 401, report=report, option="base_url",
            status=refused.http_status, said=refused.message, after=after,
        )  # fmt: skip
    if stop.repeated is not None:
        failed = f"{stop.repeated.code}: {stop.repeated.message}"
        if isinstance(report, SendReport):
            message = (
                "{threshold} requests in a row failed the same way ({failed}), so the run "
                "stopped instead of retrying every row. Check {base_url=} and that Gameball (or "
                "the emulator) is reachable. {left}"
            )
            left = rows_left(report, ledger=ledger is not None)
        else:
            message = (
                "{threshold} quotes in a row failed the same way ({failed}), so the preview "
                "stopped. Check {base_url=} and that Gameball (or the emulator) is reachable, "
                "and that it serves the reward preview."
            )
            left = ""
        raise RepeatedFailureError(message, report=report, option="base_url",
                                   threshold=stop.threshold, failed=failed, left=left)  # fmt: skip


def cause_text(error: BaseException) -> str:
    """What stopped a run, in words: a file's trouble as the system says it (``No space left
    on device: failed.parquet``); an unexpected error with its kind, for a bug report."""
    first = str(error).splitlines()[0] if str(error) else ""
    if isinstance(error, GameballError):
        return first
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}"
    return (
        f"an unexpected error ({type(error).__name__}: {first})"
        if first
        else (f"an unexpected error ({type(error).__name__})")
    )


def rows_left(report: SendReport, *, ledger: bool) -> str:
    """What becomes of a stopped run's rows not sent, as their statuses say."""
    again = report.aborted + report.failed
    parts = []
    if again:
        parts.append(
            f"{again:,} rows were not sent (aborted: {report.aborted:,}, failed: "
            f"{report.failed:,}): "
            + (
                "a re-run with the same ledger sends the aborted ones and the failed ones worth "
                f"retrying ({WORTH_RETRYING}; gb_error_code says which)"
                if ledger
                else "the failures file lists them; aborted rows, and failed ones worth retrying "
                f"({WORTH_RETRYING}; gb_error_code says which), can be sent again"
            )
        )
    in_jobs = report.error_codes.get(SendErrorCode.BATCH_JOB_OPEN.value, 0) if ledger else 0
    if in_jobs:
        parts.append(
            f"{in_jobs:,} rows are in batch jobs that had not ended: the next run with the "
            "ledger asks Gameball how those jobs ended"
        )
    if report.unknown - in_jobs:
        parts.append(
            f"{report.unknown - in_jobs:,} rows are unknown: their requests went out without an "
            "answer, so Gameball may have them; "
            + (
                "no run sends them again on its own: look them up in Gameball (gb-backfill "
                "status --ledger PATH lists them), then gb-backfill settle"
                if ledger
                else "look them up in Gameball before sending any again (gb_status unknown in "
                "the failures file): without a ledger nothing holds them back"
            )
        )
    return ". ".join(parts) + "." if parts else ""

"""The reward preview: what a backfill would award, asked of Gameball before anything is sent.

:func:`preview` (and :func:`apreview`, :func:`preview_path`, :func:`apreview_path`) reads the
input as a send would, in chunks, with the same mapping, checks and request bodies, and:

1. samples its valid rows in one pass, stratified by event name
   (:mod:`gb_backfill._preview.sampling`), building the request body of the sampled rows only; with
   ``ledger=`` (opened read-only), or rows that carry ``gb_key`` values, only the rows a send would
   send are sampled, judged by the send's own rule (:mod:`gb_backfill._engine.fate`: sent before,
   held as unknown, failed for good, copies folded);
2. asks Gameball's read-only reward preview for each sampled row
   (:mod:`gb_backfill._engine.lanes.quotes`), within the preview's limits, while a second pass
   counts each sampled customer's rows;
3. turns the answers into estimates for the whole input (:mod:`gb_backfill._preview.forecast`).

It sends nothing to the events or batch endpoints, writes no ledger and no failures file.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from .._clock import run_clock
from .._config import Settings
from .._engine.chunks import Chunk, OutgoingRow
from .._engine.dispatch import Dispatcher
from .._engine.fate import Fate, Folds, Judge
from .._engine.lanes import QuoteBook, QuoteLane
from .._engine.passes import Reader, find_folds
from .._engine.prepare import Preparer
from .._engine.progress import Progress
from .._engine.run import http_client
from .._engine.stopping import Stop
from .._engine.timeline import Timeline
from .._faces import declared, open_input, sync_of
from .._input.arrow import Frame, open_frame
from .._options import PreviewOptions, PreviewPathOptions, make_settings, mapping_of
from .._rows.mapping import ColumnMapping, resolve_mapping
from .._rows.orders import check_rows, encode_checked
from .._rows.warnings import WarningTally
from .._stops import raise_for
from .._store.companions import refuse_missing_ledger
from .._store.ledger import Ledger
from .._sync import off_loop, offload
from .._vocabulary import QuoteOutcome, Verdict
from .forecast import Quote, SampledRow, forecast
from .report import PreviewReport
from .sampling import StratifiedSample, StratifiedSampler

__all__ = ["apreview", "apreview_path", "preview", "preview_path"]

Positions = npt.NDArray[np.int64]


class Sampling:
    """The first pass: counts the rows, samples the valid ones a send would send, and notes
    which rows those are (a bit per row), for the second pass. Strictly private.

    With a ledger, or an input whose rows carry ``gb_key`` values (``folds``), each chunk is
    prepared and judged as a send would judge it (:mod:`gb_backfill._engine.fate`), and only rows it
    would send are sampled; otherwise every valid row is (a send would send them all).
    """

    def __init__(
        self, settings: Settings, mapping: ColumnMapping, sampler: StratifiedSampler[SampledRow],
        ledger: Ledger | None, folds: Folds | None = None,
    ) -> None:  # fmt: skip
        self.settings, self.mapping, self.sampler, self.ledger = settings, mapping, sampler, ledger
        self.preparer: Preparer | None = None
        self.judge: Judge | None = None
        if ledger is not None or folds is not None:
            former = ledger is not None and ledger.keeps_names_as_written()
            self.preparer = Preparer(settings, mapping, loose=ledger is not None, former=former)
            self.judge = Judge(settings, ledger, folds, check_changed=True)
        self.warnings = WarningTally(mapping)
        self.rows = self.valid = self.skipped = 0
        self.population: list[npt.NDArray[np.uint8]] = []  # per chunk, packed bits

    def close(self) -> None:
        if self.preparer is not None:
            self.preparer.close()

    def take(self, frame: pd.DataFrame) -> None:
        offset, self.rows = self.rows, self.rows + len(frame)
        if self.preparer is not None and self.judge is not None:
            prepared = self.preparer.prepare(frame, offset)
            checked = prepared.checked
            assert checked is not None
            verdicts = self.judge(prepared)
            sending = [row.local for row, fate in zip(prepared.rows, verdicts.rows, strict=True)
                       if fate is Fate.SEND]  # fmt: skip
            candidates = np.array(sending, dtype=np.int64)
            self.skipped += len(prepared.rows) - len(candidates)
        else:
            checked = check_rows(frame, self.mapping)
            candidates = np.flatnonzero(~checked.invalid).astype(np.int64)
        self.warnings.add(frame, checked.customer_ids, checked.invalid)
        self.valid += int((~checked.invalid).sum())
        bits = np.zeros(len(frame), dtype=bool)
        bits[candidates] = True
        self.population.append(np.packbits(bits))
        if not len(candidates):
            return

        def build(chosen: Positions) -> list[SampledRow]:
            rows = candidates[chosen]
            mine = encode_checked(frame, checked, only=rows)
            cells = frame.iloc[rows].to_dict("records")
            tokens = mine.session_tokens or [None] * len(rows)
            names = checked.event_names_at(rows)
            orders = mine.order_ids or [None] * len(rows)
            return [
                SampledRow(offset + int(p), customer, str(name), body, token, cell, o is not None)
                for p, customer, name, body, token, cell, o in zip(
                    rows, mine.customer_ids, names, mine.bodies, tokens, cells, orders, strict=True
                )
            ]

        self.sampler.offer(checked.event_names_at(candidates), build)

    def count_customers(self, frame: pd.DataFrame, index: int, wanted: pa.Array) -> Counter[str]:
        """The second pass, one chunk: rows per sampled customer among the rows sampled from."""
        checked = check_rows(frame, self.mapping)
        bits = np.unpackbits(self.population[index], count=len(frame)).astype(bool)
        customers = checked.customer_ids.filter(pa.array(bits))
        mine = customers.filter(pa.compute.is_in(customers, value_set=wanted))
        return Counter(mine.to_pylist())


class PreviewRun:
    """One preview, start to end. Strictly private: see :func:`run_preview`."""

    def __init__(
        self,
        settings: Settings,
        mapping: ColumnMapping,
        *,
        size: int,
        seed: int,
        ledger: Ledger | None,
        client: httpx.AsyncClient,
        progress: bool | None,
        folds: Folds | None = None,
    ) -> None:
        self.settings, self.client, self.progress = settings, client, progress
        self.started = time.perf_counter()
        sampler: StratifiedSampler[SampledRow] = StratifiedSampler(size=size, seed=seed)
        self.sampling = Sampling(settings, mapping, sampler, ledger, folds)
        self.sample: StratifiedSample[SampledRow] | None = None
        self.lane: QuoteLane | None = None
        self.book: QuoteBook | None = None
        self.rows_per_customer: Counter[Hashable] | None = None
        self.interrupted = False
        self.cancelled: asyncio.CancelledError | None = None  #: what interrupted it

    async def read(self, chunks: Iterator[pd.DataFrame]) -> None:
        """The first pass: every chunk, off the event loop."""
        while True:
            frame, cancelled = await off_loop(next, chunks, None)
            if frame is not None and not cancelled:
                _, cancelled = await off_loop(self.sampling.take, frame)
            if cancelled:
                raise asyncio.CancelledError
            if frame is None:
                return

    async def count(self, chunks: Iterator[pd.DataFrame], wanted: pa.Array) -> None:
        """The second pass, while the quotes go out: each sampled customer's rows."""
        counts: Counter[Hashable] = Counter()
        for index in range(len(self.sampling.population)):
            frame, cancelled = await off_loop(next, chunks, None)
            if frame is None or cancelled:
                return
            found, cancelled = await off_loop(self.sampling.count_customers, frame, index, wanted)
            if cancelled:
                return
            counts.update(found)
        self.rows_per_customer = counts

    async def quote(self, sample: StratifiedSample[SampledRow]) -> None:
        """Ask the reward preview about every sampled row, one request in flight per
        customer, within the preview's limits; every row ends answered, failed or not asked."""
        rows = [row for stratum in sample.strata for row in stratum.items]
        clock = run_clock()
        bar = Progress(len(rows), enabled=self.progress, clock=clock, desc="gameball preview",
                       unit="quote")  # fmt: skip
        self.book = book = QuoteBook(bar, expected=len(rows))
        dispatcher = Dispatcher()
        self.lane = lane = QuoteLane(
            self.settings, self.client, book, dispatcher, clock=clock, timeline=Timeline(clock)
        )
        dispatcher.lanes = {lane.kind: lane}
        bar.status = lane.holdup  # a full window, a Retry-After: said while the bar stands still
        lane.orders = {index for index, row in enumerate(rows) if row.order}
        chunk = Chunk(pd.DataFrame(), 0)
        lane.start()
        try:
            for index, row in enumerate(rows):
                dispatcher.submit(
                    OutgoingRow(chunk, index, row.customer, row.body, row.token, index)
                )
            if rows:
                async with bar.ticking():
                    await _first(book.done.wait(), book.stopped.wait())
        except asyncio.CancelledError:
            book.halt()  # in-flight quotes finish (bounded); the rest are not asked
            raise
        finally:
            try:
                book.stopped_early(dispatcher.waiting())
                await lane.close()
            finally:
                lane.cancel()
                bar.finish(book.counts)

    async def go(self, read: Reader) -> None:
        try:
            await self.read(read())
            self.sample = self.sampling.sampler.sample()
            wanted = pa.array(
                sorted({row.customer for s in self.sample.strata for row in s.items}), pa.string()
            )
            counting = asyncio.create_task(self.count(read(), wanted))
            try:
                await self.quote(self.sample)
                await counting
            finally:
                counting.cancel()
                await asyncio.gather(counting, return_exceptions=True)
        except asyncio.CancelledError as cancelled:
            self.interrupted, self.cancelled = True, cancelled

    def quotes(self) -> list[Quote]:
        assert self.sample is not None
        count = self.sample.size
        if self.book is None:
            return [Quote(QuoteOutcome.NOT_ASKED)] * count
        book, found = self.book, []
        for index in range(count):
            if index in book.answers:
                found.append(Quote(QuoteOutcome.QUOTED, book.answers[index]))
                continue
            outcome = book.outcomes.get(index)
            if outcome is None:
                found.append(Quote(QuoteOutcome.NOT_ASKED))
            elif outcome.verdict is Verdict.NOT_FOUND:
                found.append(Quote(QuoteOutcome.CUSTOMER_NOT_FOUND))
            else:
                found.append(Quote(QuoteOutcome.FAILED, error=f"{outcome.code}: {outcome.message}"))
        return found

    def report(self, columns: Sequence[Hashable]) -> PreviewReport:
        if self.sample is None:
            self.sample = self.sampling.sampler.sample()
        lane = self.lane
        report = forecast(
            self.sample,
            self.quotes(),
            rows=self.sampling.rows,
            valid=self.sampling.valid,
            skipped=self.sampling.skipped,
            requests=lane.requests if lane is not None else 0,
            elapsed=time.perf_counter() - self.started,
            interrupted=self.interrupted,
            rows_per_customer=self.rows_per_customer,
            columns=columns,
            http_statuses=dict(lane.http_statuses) if lane is not None else {},
        )
        return replace(
            report, warnings=self.sampling.warnings.frame(), pace=self.settings.limits,
            reserve=self.settings.reserve,
        )  # fmt: skip

    def stop(self) -> Stop | None:
        """What stopped the preview, if anything did (the faces raise it, see
        :mod:`gb_backfill._stops`)."""
        if self.interrupted:
            return Stop(interrupted=True, error=self.cancelled)
        lane, book = self.lane, self.book
        if book is not None and book.error is not None:
            return Stop(error=book.error)
        if lane is not None and lane.auth_failure is not None:
            return Stop(refused=lane.auth_failure)
        if lane is not None and lane.breaker.tripped_by is not None:
            return Stop(repeated=lane.breaker.tripped_by, threshold=lane.breaker.threshold)
        return None


async def _first(*waits: Any) -> None:
    """Wait until the first of ``waits`` is over."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_preview(
    read: Reader,
    *,
    settings: Settings,
    mapping: ColumnMapping,
    columns: Sequence[Hashable],
    sample: int,
    seed: int,
    ledger_path: str | os.PathLike[str] | None,
    client: httpx.AsyncClient | None,
    progress: bool | None,
) -> tuple[PreviewReport, Stop | None]:
    """One preview of the input ``read`` gives (it is read twice), and what stopped it early
    (None: nothing did)."""
    ledger = None
    if ledger_path is not None:
        # Not there yet (no send so far) is nothing sent; deleted beside its journal, or copied
        # alone after a crash, is refused.
        refuse_missing_ledger(Path(ledger_path))
    if ledger_path is not None and Path(ledger_path).exists():
        ledger = Ledger(ledger_path, read_only=True)
    http = client if client is not None else http_client(settings)
    run = None
    try:
        folds = await find_folds(read, settings, columns)
        run = PreviewRun(
            settings, mapping, size=sample, seed=seed, ledger=ledger, client=http,
            progress=progress, folds=folds,
        )  # fmt: skip
        await run.go(read)
    finally:
        if client is None:
            await http.aclose()
        if run is not None:
            run.sampling.close()
        if ledger is not None:
            ledger.close()
    return run.report(columns), run.stop()


# --- the public functions ----------------------------------------------------------------------


@declared(PreviewOptions)
async def apreview(df: Frame, options: PreviewOptions) -> PreviewReport:
    """Estimate what sending ``df`` would award, from Gameball's reward preview of a sample of
    its rows; the async core. Nothing is sent or awarded.

    The rows are mapped, checked and encoded exactly as :func:`send` would (same keywords for
    the mapping, keys and connection); ``sample`` valid rows (by default what the preview's
    limits allow in about 15 seconds) are drawn with ``seed``, stratified by event name so every
    name is quoted at least a few times, and each is quoted with the very body its send would
    carry, within ``preview_limits`` (default 30/s and 360 per 30 s), less the ``reserve=`` share
    left for other clients of the key (as :func:`send`). With ``ledger=``, rows an earlier run
    sent are left out, as a send would skip them (the ledger is only read).

    Returns a :class:`PreviewReport`: points for the whole input with a 95% interval, per event
    name, per campaign, coupons, and the customers a send would create. A quote is point in
    time and per row: see ``report.caveats``. Stops like a send, with :class:`RunStopped`
    carrying the report so far: :class:`AuthenticationError` after the first 401/403,
    :class:`RepeatedFailureError` when quotes fail the same way repeatedly, and
    :class:`Interrupted` on Ctrl-C.
    """
    settings = make_settings(options)
    source = await offload(open_frame, df, "preview")
    try:
        mapping = resolve_mapping(source.columns, **mapping_of(options))
        return await _preview_input(source, mapping, settings, options)
    finally:
        source.close()


preview = sync_of(
    apreview,
    "preview",
    """Estimate what sending ``df`` would award; the sync face of :func:`apreview`, same
    keywords, and it works inside a running event loop (a Jupyter cell)::

        estimate = df.gameball.preview(event="purchase")
        estimate.points, estimate.unknown_events
    """,
)


@declared(PreviewPathOptions)
async def apreview_path(path: str | os.PathLike[str], options: PreviewPathOptions) -> PreviewReport:
    """Preview a CSV or Parquet file (or a directory or glob of them), reading it in batches
    twice (memory stays bounded by the batch and the sample); otherwise as :func:`apreview`.
    The file is read exactly as :func:`send_path` reads it."""
    settings = make_settings(options)
    source, mapping = await open_input(path, options)
    return await _preview_input(source, mapping, settings, options)


async def _preview_input(
    source: Any, mapping: ColumnMapping, settings: Settings, options: PreviewOptions
) -> PreviewReport:
    """The preview of an opened input (a frame's or a file's), raising as a send does."""
    report, stop = await run_preview(
        lambda: source.frames(batch_rows=settings.batch_rows), settings=settings,
        mapping=mapping, columns=list(source.columns), sample=options.sample,
        seed=options.seed, ledger_path=options.ledger, client=options.client,
        progress=options.progress,
    )  # fmt: skip
    raise_for(report, stop)
    return report


preview_path = sync_of(
    apreview_path,
    "preview_path",
    """Preview a CSV or Parquet file; the sync face of :func:`apreview_path`.""",
)

"""Looking at rows before sending: ``validate()`` (Gameball's event rules over a DataFrame, as a
report), ``validate_path()`` (the same over a file of any size, a batch at a time) and
``payloads()`` (the request bodies the valid rows would carry)."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from ._faces import csv_options, declared
from ._input.arrow import Frame, whole_frame
from ._input.reader import InputFile, input_mapping, retyped
from ._input.stores import shown_path
from ._options import MappingOptions, ValidatePathOptions, mapping_of
from ._reports.validation import Tally, ValidationReport
from ._rows.keys import RowKeyMaker, identity_hashes
from ._rows.mapping import ColumnMapping, resolve_mapping
from ._rows.orders import check_rows, encode_checked
from ._rows.payloads import exact_number
from ._rows.rules import first_failures
from ._rows.warnings import WarningTally
from ._store.failures import FailureWriter, failure_rows, input_name

__all__ = ["payloads", "validate", "validate_path"]


@declared(MappingOptions)
def validate(df: Frame, options: MappingOptions) -> ValidationReport:
    """Check every row of ``df`` against Gameball's event rules.

    The keywords say which column is which (see the README); without them the usual column
    names are found. Raises :class:`ConfigError` only for a bad mapping; bad rows are data::

        report = validate(df, event="purchase")
        report.failures.groupby("code").size()

    ``df`` may be any frame that speaks Arrow (Polars, DuckDB, pyarrow); the report holds its
    rows, so it is read whole, as pandas.
    """
    df = whole_frame(df, "validate")
    mapping = resolve_mapping(df.columns, **mapping_of(options))
    df = retyped(df)  # a failures file's text of values a CSV reader could not convert
    checked = check_rows(df, mapping)
    warnings = WarningTally(mapping)
    warnings.add(df, checked.customer_ids, checked.invalid)
    return ValidationReport(
        valid=df[~checked.invalid],
        failures=checked.failures.drop(columns="position"),
        rows=len(df),
        warnings=warnings.frame(),
    )


@declared(MappingOptions)
def payloads(df: Frame, options: MappingOptions) -> pd.Series:
    """The Gameball v4 payloads of the valid rows of ``df``, in input order.

    Returns a Series of dicts named ``payload`` whose index is the rows' original index, so each
    payload maps back to its row; invalid rows are left out (see :func:`validate` for why).
    Numbers are as sent: a decimal a float cannot hold exactly comes back as a ``Decimal``. The
    mapping keywords are those of :func:`validate`::

        df.gameball.payloads(event="purchase").iloc[0]
        {'customerId': 'c-1', 'events': {'purchase': {'amount': 9.5}}}

    ``df`` may be any frame that speaks Arrow, read whole as pandas (the index is then its
    rows' positions).
    """
    df = whole_frame(df, "payloads")
    mapping = resolve_mapping(df.columns, **mapping_of(options))
    df = retyped(df)  # a failures file's text of values a CSV reader could not convert
    encoded = encode_checked(df, check_rows(df, mapping))
    decoded: list[dict[str, Any]] = [
        json.loads(body, parse_float=exact_number) for body in encoded.bodies
    ]
    return pd.Series(decoded, index=df.index[encoded.positions], name="payload", dtype=object)


@declared(ValidatePathOptions)
def validate_path(path: str | os.PathLike[str], options: ValidatePathOptions) -> ValidationReport:
    """Check every row of a CSV or Parquet file (or a directory or glob of them) against
    Gameball's event rules, a batch at a time, so a file of any size validates in bounded
    memory; it is read exactly as :func:`send_path` reads it.

    The report keeps no rows: its ``valid`` and ``failures`` are empty, and its counts
    (``valid_rows``, ``invalid_rows``, :meth:`~ValidationReport.counts`) are the file's. With
    ``failures_path=``, the invalid rows are written there as a send writes its failures file
    (each with its columns, ``gb_status`` ``invalid``, its first broken rule as
    ``gb_error_code`` and every rule in ``gb_error_message``), to fix and send again.
    """
    csv = csv_options(options)
    mapping = input_mapping(path, csv, options.filesystem, **mapping_of(options))
    source = InputFile(path, text_columns=mapping.identifier_columns, csv=csv,
                       filesystem=options.filesystem)  # fmt: skip
    writer = None
    if options.failures_path is not None:
        writer = FailureWriter(options.failures_path, input_name=input_name(shown_path(path)),
                               types=source.types)  # fmt: skip
        writer.check()
    tally = _Validation(mapping, source, writer)
    try:
        for frame in source.frames(batch_rows=options.batch_rows):
            tally.add(frame)
    finally:
        tally.keys.close()
    written = None
    if writer is not None and tally.invalid:
        writer.close()
        written = writer.path
    elif writer is not None:
        writer.discard()  # no invalid row: no file
    return ValidationReport(
        valid=pd.DataFrame(columns=source.columns),
        failures=tally.no_failures,
        rows=tally.rows,
        warnings=tally.warnings.frame(),
        tallied=Tally(invalid_rows=tally.invalid, rules=dict(tally.rules), examples=tally.examples),
        failures_path=written,
    )


class _Validation:
    """What :func:`validate_path` counts as it reads, and the failures it writes."""

    def __init__(
        self, mapping: ColumnMapping, source: InputFile, writer: FailureWriter | None
    ) -> None:
        self.mapping, self.source, self.writer = mapping, source, writer
        self.warnings = WarningTally(mapping)
        self.keys = RowKeyMaker()  # each invalid row's identity, as a send would key it
        self.rules: Counter[tuple[str, object]] = Counter()
        self.examples: dict[str, str] = {}  # the first message of each code
        self.rows = self.invalid = 0
        self.no_failures = check_rows(pd.DataFrame(columns=source.columns), mapping).failures
        self.no_failures = self.no_failures.drop(columns="position")

    def add(self, frame: pd.DataFrame) -> None:
        checked = check_rows(frame, self.mapping)
        self.warnings.add(frame, checked.customer_ids, checked.invalid)
        failures = checked.failures
        self.rules.update(zip(failures["code"], failures["column"], strict=True))
        for code, message in zip(failures["code"], failures["message"], strict=True):
            self.examples.setdefault(code, message)
        per_row = first_failures(failures)
        self.invalid += len(per_row)
        if self.writer is not None and not per_row.empty:
            positions = per_row.index.to_numpy(dtype=np.int64)
            carried = frame["gb_key"].iloc[positions].tolist() if "gb_key" in frame else None
            hashes = identity_hashes(frame, positions, self.mapping)
            keyed = self.keys.identity_keys(hashes, carried)
            self.writer.add(
                failure_rows(
                    frame, positions, status="invalid", code=per_row["code"].tolist(),
                    message=per_row["message"].tolist(), row_offset=self.rows,
                    types=self.source.types, keys=[keyed.text(i) for i in range(len(positions))],
                )
            )  # fmt: skip
        self.rows += len(frame)

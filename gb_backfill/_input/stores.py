"""Inputs in object stores: ``s3://``, ``gs://`` and ``abfs://`` URIs, read through pyarrow's
filesystems (``pyarrow.fs.FileSystem.from_uri``), or any path in a ``filesystem=`` given.

A URI names a file (``s3://bucket/exports/events.parquet``), a prefix read as a directory
(``s3://bucket/exports/``: its ``.csv`` or ``.parquet`` files, not those below it) or a glob
(``s3://bucket/exports/2024-*.parquet``), exactly as a local path does. Credentials and endpoints
are found the way the cloud's own tools find them (for S3 the ``AWS_*`` variables, ``AWS_PROFILE``
and ``AWS_ENDPOINT_URL`` included; for GCS and Azure their default credentials).

A file is read a stream at a time, never downloaded whole: Parquet by ranged reads of its row
groups, CSV as one sequential stream per pass. Only the input is remote; the ledger and the
failures file stay local.

Credentials never appear in what is shown: a URI is shown without its user part (pyarrow takes
``s3://KEY:SECRET@bucket/...``) and without its query, and the store's error messages are shown
with any credential the environment or the URI holds blanked out.
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import SplitResult, urlsplit

from .._errors import ConfigError

__all__ = [
    "SourceFile", "StoreFile", "a_filesystem", "is_uri", "random_access", "shown_path", "shown_uri",
    "store_files",
]  # fmt: skip

#: The URI schemes read through pyarrow's filesystems.
SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss")

_MAGIC = re.compile(r"[*?[]")
#: Environment variables that hold a credential, blanked out of messages.
_SECRET_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID",
    "AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_CLIENT_SECRET",
)  # fmt: skip


def a_filesystem(name: str, value: Any) -> Any:
    """The check of ``filesystem=``: a ``pyarrow.fs.FileSystem``, or None."""
    import pyarrow.fs as pafs  # not at ``import gb_backfill``: only an object store needs it

    if value is None or isinstance(value, pafs.FileSystem):
        return value
    raise ConfigError(
        "{" + name + "=} must be a pyarrow.fs.FileSystem (e.g. pyarrow.fs.S3FileSystem(...)), "
        "not {kind}",
        option=name, kind=type(value).__name__,
    )  # fmt: skip


def is_uri(path: object) -> bool:
    """Whether ``path`` is an object store's URI (``s3://...``)."""
    if not isinstance(path, str):
        return False
    scheme, found, _ = path.partition("://")
    return bool(found) and scheme.lower() in SCHEMES


def shown_path(path: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """``path`` as it may be shown and recorded: a URI without its credentials."""
    return shown_uri(path) if isinstance(path, str) and is_uri(path) else path


def shown_uri(uri: str) -> str:
    """``uri`` as it may be shown: without the credentials a user part or a query may hold
    (an Azure URI keeps its container, ``abfs://container@account...``)."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{_host(parts)}{parts.path}"


def _host(parts: SplitResult) -> str:
    """The URI's authority without credentials."""
    host = parts.netloc.rpartition("@")[2]
    if parts.scheme.lower().startswith("abfs") and parts.username:
        return f"{parts.username}@{host}"
    return host


def _scrubbed(text: str, uri: str = "") -> str:
    """``text`` (a store's error) on one line, with every credential it may hold blanked."""
    secrets = [os.environ.get(name, "") for name in _SECRET_VARIABLES]
    parts = urlsplit(uri) if uri else None
    if parts is not None and parts.password:
        secrets += [parts.password, parts.query]
        if not parts.scheme.lower().startswith("abfs"):
            secrets.append(parts.username or "")
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return first.rstrip(". ")


class StoreFile:
    """One file in an object store, with what the readers use of a :class:`~pathlib.Path`."""

    def __init__(self, filesystem: Any, path: str, scheme: str) -> None:
        self.filesystem, self.path = filesystem, path
        self._shown = f"{scheme}://{path}" if scheme else path
        posix = PurePosixPath(path)
        self.name, self.suffix, self.suffixes = posix.name, posix.suffix, posix.suffixes

    def __str__(self) -> str:
        return self._shown

    def __repr__(self) -> str:
        return f"StoreFile({self._shown!r})"

    def open(
        self, mode: str = "r", *, encoding: str | None = None, newline: str | None = None
    ) -> IO[Any]:
        """The file as one sequential stream (binary with ``"rb"``, else text)."""
        stream = self.filesystem.open_input_stream(self.path)
        if "b" in mode:
            return stream  # type: ignore[no-any-return]
        return io.TextIOWrapper(stream, encoding=encoding or "utf-8", newline=newline)


#: A file an input is read from: local, or in an object store.
SourceFile = Path | StoreFile


@contextmanager
def random_access(file: Path | StoreFile) -> Iterator[Any]:
    """What a Parquet reader reads ``file`` from: a local path itself, or a stored file opened
    for ranged reads (closed after)."""
    if isinstance(file, Path):
        yield file
        return
    with file.filesystem.open_input_file(file.path) as handle:
        yield handle


def _filesystem(uri: str, filesystem: Any) -> tuple[Any, str, str]:
    """The filesystem, the path in it and the scheme to show for ``uri``."""
    if filesystem is not None:
        if is_uri(uri):
            parts = urlsplit(uri)
            return filesystem, f"{parts.netloc.rpartition('@')[2]}{parts.path}", parts.scheme
        return filesystem, uri, ""
    import pyarrow.fs as pafs  # not at ``import gb_backfill``: only an object store needs it

    try:
        found, path = pafs.FileSystem.from_uri(uri)
    except (OSError, ValueError) as error:  # ArrowException is an OSError or a ValueError
        raise ConfigError(
            f"{shown_uri(uri)}: cannot open its object store ({_scrubbed(str(error), uri)}); "
            "check the URI and the credentials the cloud's own tools use"
        ) from None
    return found, path, urlsplit(uri).scheme


def store_files(
    uri: str, filesystem: Any = None, suffixes: frozenset[str] = frozenset()
) -> list[StoreFile]:
    """The files ``uri`` names (a file, a prefix or a glob), sorted; :class:`ConfigError` when
    there is none or the store cannot be read. ``suffixes``: a prefix's files that count."""
    import pyarrow.fs as pafs

    store, path, scheme = _filesystem(uri, filesystem)
    shown = shown_uri(uri) if is_uri(uri) else uri

    def file(found: str) -> StoreFile:
        return StoreFile(store, found, scheme)

    try:
        if _MAGIC.search(path):
            pattern = PurePosixPath(path).parts
            if not _fixed(pattern):
                raise ConfigError(f"{shown}: a glob needs a bucket named in full")
            base = str(PurePosixPath(*pattern[: _fixed(pattern)]))
            listed = store.get_file_info(pafs.FileSelector(base, recursive=True))
            matched = [
                info.path for info in listed
                if info.type == pafs.FileType.File and _matches(info.path, pattern)
            ]  # fmt: skip
            if not matched:
                raise ConfigError(f"{shown}: no file matches")
            return [file(p) for p in sorted(matched)]
        info = store.get_file_info(path.rstrip("/"))
        if info.type == pafs.FileType.File:
            return [file(info.path)]
        if info.type == pafs.FileType.Directory:
            listed = store.get_file_info(pafs.FileSelector(info.path))
            found = sorted(
                i.path for i in listed
                if i.type == pafs.FileType.File and not i.base_name.startswith((".", "_"))
                and {s.lower() for s in PurePosixPath(i.path).suffixes} & suffixes
            )  # fmt: skip
            if not found:
                raise ConfigError(f"{shown}: a prefix with no .csv or .parquet file")
            return [file(p) for p in found]
        _check_bucket(store, path, shown)
        raise ConfigError(f"{shown}: no such file")
    except (OSError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"{shown}: cannot be read ({_scrubbed(str(error), uri)})") from None


def _fixed(pattern: tuple[str, ...]) -> int:
    """How many leading parts of a glob have no wildcard."""
    for index, part in enumerate(pattern):
        if _MAGIC.search(part):
            return index
    return len(pattern)


def _matches(path: str, pattern: tuple[str, ...]) -> bool:
    """Whether ``path`` matches the glob ``pattern`` part by part (``*`` stays in its part)."""
    parts = PurePosixPath(path).parts
    return len(parts) == len(pattern) and all(
        fnmatch.fnmatchcase(part, wanted) for part, wanted in zip(parts, pattern, strict=True)
    )


def _check_bucket(store: Any, path: str, shown: str) -> None:
    """A one-line error naming the bucket (or container) when it is the bucket that is not
    there, or not readable with these credentials."""
    import pyarrow.fs as pafs

    bucket = path.split("/", 1)[0]
    if not bucket or bucket == path:
        return
    if store.get_file_info(bucket).type == pafs.FileType.NotFound:
        raise ConfigError(
            f"{shown}: no bucket {bucket!r} (or these credentials cannot see it); check the "
            "URI, and the credentials and endpoint the cloud's own tools use"
        )

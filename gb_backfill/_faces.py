"""The public functions' faces: keywords checked against their declaration, and sync from async.

:func:`declared` turns ``core(first, options)`` into ``face(first, **keywords)``: its signature
is the declaration's (see :mod:`gb_backfill._options`), typed for mypy through ``ParamSpec`` and
shown by ``help()``; at run time an unknown keyword is one :class:`ConfigError` naming the
nearest option, and each value given is checked by its option's check. :func:`sync_of` makes
the sync face of an async one, with the same signature::

    @declared(SendOptions)
    async def asend(df: pd.DataFrame, options: SendOptions) -> SendReport: ...

    send = sync_of(asend, "send", "Send ``df`` and wait for the report; ...")
"""

from __future__ import annotations

import difflib
import functools
import inspect
import os
from collections.abc import Callable, Coroutine, Hashable, Sequence
from dataclasses import fields
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from ._errors import ConfigError
from ._input.reader import CsvOptions, InputFile, input_mapping, key_frames
from ._options import MOVED, MappingOptions, ReadOptions, about_of, mapping_of
from ._rows.keys import check_key_columns, check_unique
from ._rows.mapping import ColumnMapping
from ._stops import Interrupted

__all__: list[str] = []

P = ParamSpec("P")
R = TypeVar("R")
Options = TypeVar("Options")
Input = TypeVar("Input")  # a DataFrame, a path, a ledger


def options_of(
    declaration: Callable[..., Options], function: str, given: dict[str, Any]
) -> Options:
    """``declaration`` made of the keywords ``given`` to ``function``, each checked."""
    options = {option.name: option for option in fields(cast(Any, declaration))}
    for keyword in given:
        if keyword not in options:
            raise unknown_keyword(function, keyword, sorted(options))
    checked = {}
    for keyword, value in given.items():
        check = about_of(options[keyword]).check
        checked[keyword] = value if check is None else check(keyword, value)
    return declaration(**checked)


def unknown_keyword(function: str, keyword: str, known: list[str]) -> ConfigError:
    """The error for ``function(keyword=...)``: where the keyword went, or the nearest one."""
    if keyword in MOVED:
        return ConfigError(
            "{function}() takes no {keyword}=: {moved}",
            option=keyword, function=function, keyword=keyword, moved=MOVED[keyword],
        )  # fmt: skip
    near = difflib.get_close_matches(keyword, known, n=1)
    if near:
        hint = "did you mean {" + near[0] + "=}?"
    else:
        hint = "the keywords are {known}" if known else "it takes none"
    return ConfigError(
        "{function}() got an unknown keyword {keyword}=; " + hint,
        option=keyword, function=function, keyword=keyword, known=", ".join(known),
    )  # fmt: skip


def _signature(core: Callable[..., Any], declaration: Callable[..., Any]) -> inspect.Signature:
    """The face's signature: the core's first parameter, then the declaration's keywords."""
    first = next(iter(inspect.signature(core).parameters.values()))
    keywords = list(inspect.signature(declaration).parameters.values())
    return inspect.Signature(
        [first.replace(kind=inspect.Parameter.POSITIONAL_ONLY), *keywords],
        return_annotation=inspect.signature(core).return_annotation,
    )


def declared(
    declaration: Callable[P, Options],
) -> Callable[[Callable[[Input, Options], R]], Callable[Concatenate[Input, P], R]]:
    """The public function whose keywords are ``declaration``'s fields, calling ``core`` with
    them checked (an async ``core`` makes an async function)."""

    def decorate(core: Callable[[Input, Options], R]) -> Callable[Concatenate[Input, P], R]:
        name = core.__name__

        async def async_face(first: Input, /, **keywords: Any) -> Any:
            return await cast(Any, core)(first, options_of(declaration, name, keywords))

        def sync_face(first: Input, /, **keywords: Any) -> Any:
            return core(first, options_of(declaration, name, keywords))

        face: Any = async_face if inspect.iscoroutinefunction(core) else sync_face
        functools.update_wrapper(face, core)
        del face.__wrapped__  # help() shows the signature below, not the core's
        face.__signature__ = _signature(core, declaration)
        face.__options__ = declaration
        return cast(Callable[Concatenate[Input, P], R], face)

    return decorate


def sync_of(async_face: Callable[P, Coroutine[Any, Any, R]], name: str, doc: str) -> Callable[P, R]:
    """The sync face of ``async_face``: the same keywords, run to the end from sync code (in a
    Jupyter cell too, see :func:`~gb_backfill._sync.run_sync`).

    Its keywords are checked before anything runs, in its own name. Stopped by Ctrl-C, it
    lets the ``KeyboardInterrupt`` go on, with the run's one-line summary as its message.
    """
    declaration = cast(Any, async_face).__options__

    def face(*args: P.args, **keywords: P.kwargs) -> R:
        from ._sync import run_sync  # asyncio: not at ``import gb_backfill``

        options_of(declaration, name, keywords)  # misspelt: say so in this function's name
        try:
            return run_sync(async_face(*args, **keywords))
        except Interrupted as stopped:
            # The script stops as Ctrl-C stops it; its traceback's last line says what the run
            # did (a trial's ended with a bare KeyboardInterrupt, the summary lines above it).
            raise KeyboardInterrupt(str(stopped)) from None

    face.__name__ = face.__qualname__ = name
    face.__module__ = async_face.__module__
    face.__doc__ = doc
    cast(Any, face).__signature__ = inspect.signature(async_face)
    cast(Any, face).__options__ = declaration
    return face


# --- what every face does with its input, off the caller's event loop --------------------------


def csv_options(options: ReadOptions) -> CsvOptions:
    """The checked CSV options of a path's keywords."""
    return CsvOptions.make(sep=options.sep, encoding=options.encoding,
                           na_values=options.na_values, dtype=options.dtype,
                           thousands=options.thousands, decimal=options.decimal)  # fmt: skip


async def open_input(
    path: str | os.PathLike[str], options: ReadOptions, *, row_key: Sequence[Hashable] = ()
) -> tuple[InputFile, ColumnMapping]:
    """A path's input and its column mapping (``options`` holds the mapping keywords too),
    its first pass (a CSV's types, its rows) and its ``row_key`` check run off the loop."""
    from ._sync import offload  # asyncio: not at ``import gb_backfill``

    csv = csv_options(options)
    filesystem = options.filesystem
    mapping = input_mapping(path, csv, filesystem, **mapping_of(cast(MappingOptions, options)))
    text = [*mapping.identifier_columns, *row_key]
    source = await offload(
        functools.partial(InputFile, path, text_columns=text, csv=csv, filesystem=filesystem)
    )
    if row_key:
        check_key_columns(source.columns, row_key)
        frames = source.frames(batch_rows=cast(Any, options).batch_rows)
        await offload(check_unique, key_frames(frames, row_key), row_key)
    return source, mapping

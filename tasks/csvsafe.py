"""CSV files people open in a spreadsheet: a cell a spreadsheet would evaluate as a formula (text
beginning with =, +, -, @, a tab or a carriage return: the OWASP rule) is written with a leading
apostrophe, which spreadsheets show as text and do not evaluate. Numbers (-74.006) are numbers, not
formulas, and stay as they are.

What must stay byte-identical to the source (the name Numbeo prints, which the registry matches
pages by) is stored escaped in the CSV and read back unescaped by `unescape`: the registry loader
does, so matching sees the printed name and the person reviewing the file sees inert text.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from typing import BinaryIO

import numpy as np
import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
WRITE_ROWS = 100_000  # rows of a frame with categorical columns written at a time
_NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")


def escape(value):
    """A text cell a spreadsheet would evaluate, made inert ("'=HYPERLINK(...)"); anything else as is."""
    if isinstance(value, str) and value.startswith(TRIGGERS) and not _NUMBER.match(value):
        return "'" + value
    return value


def unescape(value):
    """What `escape` wrote, read back as the source printed it."""
    escaped = isinstance(value, str) and len(value) > 1 and value[0] == "'" and value[1:].startswith(TRIGGERS)
    return value[1:] if escaped and not _NUMBER.match(value[1:]) else value


def _triggered(s: pd.Series) -> pd.Series:
    """Which cells of a text column begin with a trigger (vectorised: few cells do)."""
    try:
        return s.str.startswith(TRIGGERS).fillna(False).astype(bool)
    except AttributeError:  # an object column without text (None, bytes): every cell is looked at
        return pd.Series(True, index=s.index)


def escape_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Every text cell (and the column names) escaped; numeric columns untouched."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if isinstance(s.dtype, pd.CategoricalDtype):  # texts held once each: their categories escaped
            names = [escape(c) for c in s.cat.categories]
            if names != list(s.cat.categories):
                out[col] = (
                    s.cat.rename_categories(names)
                    if len(set(names)) == len(names)
                    else s.astype(object).map(escape)  # "=x" and "'=x" both there: cell by cell
                )
        elif s.dtype == object or pd.api.types.is_string_dtype(s):
            at = np.flatnonzero(_triggered(s).to_numpy())
            if len(at):
                escaped = s.copy()
                escaped.iloc[at] = [escape(v) for v in s.iloc[at]]
                out[col] = escaped.array  # by position: an index may repeat
    out.columns = [escape(str(c)) for c in out.columns]
    return out


def unescape_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(unescape)
    return out


def to_csv(df: pd.DataFrame, **kwargs) -> str:
    """`df.to_csv` for a file people open: formula-like text cells escaped."""
    return escape_frame(df).to_csv(**kwargs)


def csv_writer(df: pd.DataFrame, **kwargs) -> Callable[[BinaryIO], None]:
    """`to_csv` into an open binary file, chunk by chunk (the same bytes, never the whole text in
    memory): for `storage.atomic_write_stream`."""

    def write(fh: BinaryIO) -> None:
        text = io.TextIOWrapper(fh, encoding="utf-8", newline="", write_through=True)
        safe = escape_frame(df)
        categorical = [c for c in safe.columns if isinstance(safe[c].dtype, pd.CategoricalDtype)]
        if not categorical:
            safe.to_csv(text, **kwargs)
        elif kwargs == {"index": False} and all(_plain(safe[c]) for c in safe.columns):
            _write_rows(safe, text)
        else:  # pandas writes categories several times slower than texts: each block as texts
            for start in range(0, max(len(safe), 1), WRITE_ROWS):
                block = safe.iloc[start : start + WRITE_ROWS]
                block = block.astype({c: block[c].cat.categories.dtype for c in categorical})
                block.to_csv(text, **{**kwargs, "header": kwargs.get("header", True) if start == 0 else False})
        text.flush()
        text.detach()  # the caller closes the file

    return write


def _plain(s: pd.Series) -> bool:
    """A column `_cells` prints as pandas does: texts (held as categories or not), or numpy numbers
    and booleans. Others (nullable numbers, dates, mixed objects) stay with pandas."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return pd.api.types.is_string_dtype(s.cat.categories)
    if isinstance(s.dtype, np.dtype) and s.dtype.kind in "fbiu":
        return True
    return pd.api.types.is_string_dtype(s)  # an object column: only when every cell is a text


def _cells(s: pd.Series) -> list:
    """A `_plain` column's cells as the Python values `csv.writer` prints the way `DataFrame.to_csv`
    does; None for a missing cell, which both write empty."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        texts = np.empty(len(s.cat.categories) + 1, dtype=object)  # the last one None
        texts[:-1] = s.cat.categories
        return texts[s.cat.codes.to_numpy()].tolist()  # code -1, a missing cell: the None at the end
    if s.dtype.kind == "f":  # pandas prints floats without a float_format as numpy's str of them
        values = s.to_numpy()
        texts = values.astype(str).astype(object)
        texts[np.isnan(values)] = None
        return texts.tolist()
    return s.to_numpy(dtype=object, na_value=None).tolist()


def _write_rows(frame: pd.DataFrame, text: io.TextIOBase) -> None:
    """`frame.to_csv(text, index=False)`, the same bytes, for a frame of `_plain` columns: the cells
    go to `csv.writer` (which pandas itself writes with) a block of rows at a time, as one text per
    block, without pandas' conversion of each categorical block to texts."""
    for start in range(0, max(len(frame), 1), WRITE_ROWS):
        block = frame.iloc[start : start + WRITE_ROWS]
        buffer = io.StringIO()
        out = csv.writer(buffer, lineterminator="\n")
        if start == 0:
            out.writerow(list(frame.columns))
        out.writerows(zip(*(_cells(block[c]) for c in block.columns), strict=True))
        text.write(buffer.getvalue())

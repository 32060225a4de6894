"""Long tables whose texts are categories: a release's gathered table repeats few texts
(indicators, sources, units, editions, statuses) over many rows, and each city's id once per
indicator. Held as categories, each row costs a few bytes per text column.

Pandas turns categories into plain texts as soon as they meet a text column or other categories
(`pd.concat`, a new value set into them): these helpers keep them categories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def is_categorical(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.CategoricalDtype)


def categories_of(s: pd.Series) -> pd.Index:
    """The texts `s` holds: its categories when it is a category (a gathered provenance's are those
    it uses), else its distinct values."""
    return s.cat.categories if is_categorical(s) else pd.Index(s.dropna().unique())


def text_dtype(s: pd.Series):
    """The dtype of `s`'s texts: its categories' when it is a category."""
    return s.cat.categories.dtype if is_categorical(s) else s.dtype


def as_texts(df: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """`df` with its categories (or those of `columns`) as texts again (for a file, or a pivot)."""
    cats = [c for c in (df.columns if columns is None else columns) if is_categorical(df[c])]
    return df.astype({c: text_dtype(df[c]) for c in cats}) if cats else df


def frame_with_categories(tables: list[pa.Table]) -> pd.DataFrame:
    """Arrow tables (one per snapshot) as one frame, every text column a category; columns missing
    from a table are empty there, and numbers of different widths meet as pandas would make them."""
    table = pa.concat_tables(tables, promote_options="permissive")
    tables.clear()  # the caller's list: the tables live on only in `table`
    for i, f in enumerate(table.schema):
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type):
            table = table.set_column(i, f.name, pc.dictionary_encode(table.column(i)))
    return table.to_pandas()


def with_values(s: pd.Series, values) -> pd.Series:
    """`s`, its categories extended by `values` (those it lacks), so that they can be set into it."""
    if not is_categorical(s):
        return s
    new = [v for v in dict.fromkeys(values) if v not in s.cat.categories]
    return s.cat.add_categories(new) if new else s


def filled(s: pd.Series, value: str) -> pd.Series:
    """`s.fillna(value)`, a category kept a category."""
    if is_categorical(s) and not s.isna().any():
        return s
    return with_values(s, [value]).fillna(value)


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """`pd.concat(frames, ignore_index=True)`, where every column that is a category in the first
    frame stays one (its categories: the union, in order of first appearance), when the other frames
    hold only texts or nothing in it; any other column as pandas concatenates it."""
    first = frames[0]
    kept = [
        c
        for c in first.columns
        if is_categorical(first[c])
        and all(c in f.columns and (is_categorical(f[c]) or _texts_only(f[c])) for f in frames[1:])
    ]
    out = pd.concat([f.drop(columns=kept) for f in frames], ignore_index=True)
    for c in kept:
        parts = [f[c] if is_categorical(f[c]) else f[c].astype("category") for f in frames]
        categories = pd.Index(
            dict.fromkeys(v for p in parts for v in p.cat.categories), dtype=first[c].cat.categories.dtype
        )
        codes = [pd.Categorical(p, categories=categories).codes for p in parts]
        out[c] = pd.Categorical.from_codes(np.concatenate(codes), categories=categories)
    return out[list(dict.fromkeys(c for f in frames for c in f.columns))]


def sorted_categories(s: pd.Series) -> pd.Series:
    """`s.astype("category")`: the categories it uses, sorted (as pandas makes them from texts)."""
    if not is_categorical(s):
        return s.astype("category")
    s = s.cat.remove_unused_categories()
    return s.cat.reorder_categories(s.cat.categories.sort_values())


def _texts_only(s: pd.Series) -> bool:
    return pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty")


def equals_text(s: pd.Series, text: str) -> pd.Series:
    """`s.astype(str) == text`, a category compared by its categories (not spelled out on every row)."""
    if not is_categorical(s):
        return s.astype(str) == text
    hits = [k for k, c in enumerate(s.cat.categories) if str(c) == text]
    return pd.Series(np.isin(s.cat.codes.to_numpy(), hits), index=s.index)


def pivoted(long: pd.DataFrame, index: str, columns: str, values: str) -> pd.DataFrame:
    """`as_texts(long).pivot(index=, columns=, values=)` for float values: rows and columns the
    sorted texts the two keys use, NaN where a pair is absent, an error on a pair given twice. Keys
    that are categories are placed by their codes, never spelled out as texts on every row."""
    rows, cols = long[index], long[columns]
    plain = not (is_categorical(rows) and is_categorical(cols)) or long[values].dtype != np.float64
    if plain or rows.isna().any() or cols.isna().any():
        return as_texts(long[[index, columns, values]]).pivot(index=index, columns=columns, values=values)
    r, row_labels = _sorted_positions(rows)
    c, col_labels = _sorted_positions(cols)
    cell = r * len(col_labels) + c
    if len(cell) and np.bincount(cell, minlength=len(row_labels) * len(col_labels)).max() > 1:
        raise ValueError("Index contains duplicate entries, cannot reshape")
    matrix = np.full((len(row_labels), len(col_labels)), np.nan)
    matrix.flat[cell] = long[values].to_numpy()
    return pd.DataFrame(matrix, index=row_labels.rename(index), columns=col_labels.rename(columns))


def _sorted_positions(s: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Each row's position among the sorted texts `s` uses (a category without missing values), and
    those texts."""
    codes = s.cat.codes.to_numpy()
    used = np.flatnonzero(np.bincount(codes, minlength=len(s.cat.categories)))
    labels = s.cat.categories[used]
    order = labels.argsort()
    position = np.empty(len(s.cat.categories), dtype=np.int64)
    position[used[order]] = np.arange(len(used))
    return position[codes], labels[order]

"""YAML configuration files read into typed models (pydantic), with one-line errors.

`load_yaml(path, what)` reads a document; `explain(exc, path, doc)` turns a pydantic
`ValidationError` into one line naming the file, the line, the key path (list items by their `id`
or name where they have one) and what was expected:

    scoring/methodology.yaml line 31: topsis.normalization: expected 'minmax' or 'vector', found 'zscore'
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

# YAML's safe loader, libyaml's when PyYAML was built with it (same documents and error marks, faster)
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigFileError(ValueError):
    """A configuration file that cannot be read, is not YAML, or does not match its model."""


def load_yaml(path: Path, what: str) -> tuple[Any, bytes]:
    """The document at `path` and its bytes; an unreadable file or invalid YAML is one line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigFileError(f"cannot read the {what} {path}: {exc.strerror}") from None
    try:
        return yaml.load(raw, Loader=YAML_LOADER), raw
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigFileError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None


def key_path(loc: tuple, doc: Any) -> str:
    """('dimensions', 0, 'indicators', 2, 'proxy') -> 'dimensions.economy.indicators.night_lights.proxy'."""
    parts, node = [], doc
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            item = node[part]
            name = item.get("id") if isinstance(item, dict) else None
            parts.append(str(name) if name is not None else f"[{part}]")
            node = item
            continue
        if isinstance(part, str) and part.startswith(("function-", "literal[", "union[")):
            continue  # pydantic's own names of a validator or a union member
        parts.append(str(part))
        node = node.get(part) if isinstance(node, dict) else None
    return ".".join(parts).replace(".[", "[")


def _line(raw: bytes, loc: tuple) -> str:
    """' line N' of the key `loc` names (or of its nearest parent the file has), else ''."""
    try:
        node = yaml.compose(raw, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return ""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if nxt is None:
                break
            line, node = nxt[0].start_mark.line, nxt[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line
        else:
            break
    return f" line {line + 1}" if line is not None else ""


def _expected(err: Any) -> str:
    kind, msg = err["type"], err["msg"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return "unknown key"
    if kind == "missing":
        return "missing (required)"
    if msg.startswith("Input should be "):
        return "expected " + msg[len("Input should be ") :]
    if msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    return msg[0].lower() + msg[1:]


def _unwrap(node: Any) -> Any:
    while typing.get_origin(node) in (typing.Union, types.UnionType, typing.Annotated):
        args = [a for a in typing.get_args(node) if a is not type(None)]
        node = args[0] if args else None
    return node


def _keys(node: Any) -> list[str] | None:
    """The keys a model or dataclass accepts, or None."""
    if isinstance(node, type) and issubclass(node, BaseModel):
        return list(node.model_fields)
    if isinstance(node, type) and dataclasses.is_dataclass(node):
        return [f.name for f in dataclasses.fields(node)]
    return None


def _model_at(model: Any, loc: tuple) -> Any:
    """The model class (or type) that validates the value at `loc` under `model`."""
    node = model
    for part in loc:
        node = _unwrap(node)
        if isinstance(part, str) and _keys(node) is not None:
            hints = typing.get_type_hints(node) if dataclasses.is_dataclass(node) else None
            if hints is not None:
                node = hints.get(part)
            else:
                field = node.model_fields.get(part)
                node = field.annotation if field else None
        elif typing.get_origin(node) is dict:
            node = typing.get_args(node)[1]
        elif typing.get_origin(node) in (list, tuple):
            node = typing.get_args(node)[0]
        else:
            return None
    return _unwrap(node)


def explain(
    exc: ValidationError, path: Path | str, doc: Any, raw: bytes = b"", model: Any = None, prefix: tuple = ()
) -> str:
    """One line for the first error of `exc` (and how many more there are); after an unknown key,
    the keys `model` knows there. `prefix`: where in `doc` the validated value sits."""
    # an unknown key first: a misspelt key is also a missing one, and the spelling is the news
    errors = sorted(exc.errors(), key=lambda e: e["type"] not in ("extra_forbidden", "unexpected_keyword_argument"))
    err = errors[0]
    own = tuple(err["loc"])
    loc = prefix + own
    where = key_path(loc, doc) or "(the whole file)"
    text = f"{path}{_line(raw, loc) if raw else ''}: {where}: {_expected(err)}"
    if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        known = _keys(_model_at(model, own[:-1]))
        if known:
            text += f"; known: {', '.join(sorted(known))}"
    elif err["type"] not in ("missing", "value_error") and "input" in err:
        text += f", found {err['input']!r}"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return text

"""A composed config against its schema (digits.config.schema), and the one-line messages.

Everything here is derived from the schema's fields: their types (for wrong types), their names (for
unknown keys) and their `allowed` metadata (ranges, choices, nested mappings).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    OmegaConfBaseException,
    ValidationError,
)

from digits.config.schema import Nested, OneOf
from digits.errors import DigitsError

TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
PLURALS = {int: "integers", float: "numbers", bool: "true/false values", str: "strings"}

Fields = dict[str, dataclasses.Field]


def describe(schema_field: dataclasses.Field) -> str:
    """What a field takes, in words: 'an integer >= 1', 'a list of numbers > 0 (or null)'."""
    kind = schema_field.type
    nullable = False
    if isinstance(kind, types.UnionType) and type(None) in kind.__args__:
        nullable = True
        kind = next(arg for arg in kind.__args__ if arg is not type(None))
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        words = f"a list of {PLURALS.get(item, 'values')}"
    else:
        words = TYPE_WORDS.get(kind, "a value")
    allowed = schema_field.metadata.get("allowed")
    if allowed is not None:
        words = allowed.describe() if words == "a string" else f"{words} {allowed.describe()}"
    return f"{words} (or null)" if nullable else words


def schema_fields(node: DictConfig) -> Fields | None:
    """The schema's fields of a composed config node, or None for a node without a schema."""
    schema = OmegaConf.get_type(node)
    if schema is None or not dataclasses.is_dataclass(schema):
        return None
    return {f.name: f for f in dataclasses.fields(schema)}


def schema_nodes(node: DictConfig, prefix: str = "") -> Iterator[tuple[str, DictConfig, Fields]]:
    """Every node of a composed config that has a schema: (key prefix, node, schema fields)."""
    fields = schema_fields(node)
    if fields is not None:
        yield prefix, node, fields
    for key in node:
        # The node itself, unresolved: ${hydra:...} values cannot resolve outside a run.
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            yield from schema_nodes(child, f"{prefix}{key}.")


def shown(key: str, value: Any, combo: Sequence[str]) -> str:
    """`key=value` as the user typed it, when the command line set it."""
    typed = next((o for o in combo if o.split("=", 1)[0].lstrip("+~") == key), None)
    if typed is not None:
        return typed.lstrip("+~")
    if value is None:
        value = "null"
    return f"{key}={value}"


def check_schema(cfg: DictConfig, combo: Sequence[str]) -> None:
    """Required values, unknown keys, ranges and choices of every node that has a schema."""
    for prefix, node, fields in schema_nodes(cfg):
        check_node(node, fields, prefix, combo)


def check_node(node: DictConfig, fields: Fields, prefix: str, combo: Sequence[str]) -> None:
    """One node against its schema's fields."""
    extra_keys = getattr(OmegaConf.get_type(node), "EXTRA_KEYS", "")
    for key in node:
        if key not in fields and not extra_keys:
            raise unknown_key(f"{prefix}{key}", shown(f"{prefix}{key}", node[key], combo), fields)
    for name, schema_field in fields.items():
        key = f"{prefix}{name}"
        if OmegaConf.is_missing(node, name):
            raise DigitsError(f"{key}: required, must be {describe(schema_field)}")
        allowed = schema_field.metadata.get("allowed")
        value = node[name] if allowed is not None else None
        if value is None:
            continue
        if isinstance(allowed, Nested):
            check_nested(value, allowed.schema, f"{key}.", combo)
        elif not allowed.admits(
            OmegaConf.to_object(value) if OmegaConf.is_config(value) else value
        ):
            problem = "use" if isinstance(allowed, OneOf) else "out of range, must be"
            raise DigitsError(f"{shown(key, value, combo)}: {problem} {allowed.describe()}")


def check_nested(value: Any, schema: type, prefix: str, combo: Sequence[str]) -> None:
    key = prefix.rstrip(".")
    if not OmegaConf.is_dict(value):
        raise DigitsError(f"{shown(key, value, combo)}: must be {Nested(schema).describe()}")
    fields = {f.name: f for f in dataclasses.fields(schema)}
    try:
        node = OmegaConf.merge(OmegaConf.structured(schema), value)
    except OmegaConfBaseException as error:
        name = str(getattr(error, "full_key", "") or "").split("[", 1)[0]
        if name in fields and isinstance(error, ValidationError):
            raise DigitsError(
                f"{shown(key, value, combo)}: {prefix}{name} must be {describe(fields[name])}"
            ) from error
        raise unknown_key(f"{prefix}{name}", shown(key, value, combo), fields) from error
    check_node(node, fields, prefix, combo)


def unknown_key(key: str, typed: str, fields: Fields | None, extra: str = "") -> DigitsError:
    """No such key: say which keys there are, or how to pass another argument through."""
    known = [name for name in fields or {} if not name.startswith("_")]
    where = key.rsplit(".", 1)[0] if "." in key else "the top level"
    if extra:
        hint = f"to pass {extra}, use +{typed.lstrip('+')}"
    elif known:
        hint = f"{where} takes: {', '.join(known)}"
    else:
        hint = "see `--cfg job` for the keys"
    return DigitsError(f"{typed}: no such key in the config ({hint})")


def _parent(cfg: DictConfig, key: str) -> DictConfig | None:
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return node if isinstance(node, DictConfig) else None


def composition_error(
    error: ConfigCompositionException,
    combo: list[str],
    recompose: Callable[[list[str]], DictConfig],
) -> DigitsError:
    """One line for a failed composition: a wrong type or an unknown key, said with the schema
    of the node the key is in (found by composing without the offending override)."""
    cause = error.__cause__
    key = (getattr(cause, "full_key", None) or "").split("[", 1)[0]  # a list element: the list
    without = [o for o in combo if o.split("=", 1)[0].lstrip("+~") != key]
    parent = None
    if key and without != combo:
        try:
            parent = _parent(recompose(without), key)
        except (ConfigCompositionException, OmegaConfBaseException):
            parent = None
    fields = schema_fields(parent) if parent is not None else None
    name = key.rsplit(".", 1)[-1]
    typed = shown(key, getattr(cause, "value", None), combo)
    if isinstance(cause, ValidationError) and key:
        what = describe(fields[name]) if fields and name in fields else "another type"
        return DigitsError(f"{typed}: must be {what}")
    if isinstance(cause, ConfigAttributeError | ConfigKeyError) and key:
        extra = getattr(OmegaConf.get_type(parent), "EXTRA_KEYS", "") if parent is not None else ""
        return unknown_key(key, typed, fields, extra)
    return DigitsError(" ".join(str(error).split()))

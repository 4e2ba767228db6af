"""A composed config against its schema (digits.config.schema), and the one-line messages.

Everything here is derived from the schema's fields: their types (for wrong types), their names (for
unknown keys) and their `allowed` metadata (ranges, choices, nested mappings).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import logging
import math
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from hydra.errors import ConfigCompositionException
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    OmegaConfBaseException,
    ValidationError,
)

from digits.config import group_options
from digits.config.schema import ExtraKeys, Nested, schema_of
from digits.constraints import OneOf
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
    for key, child in child_nodes(node):
        if isinstance(child, DictConfig):
            yield from schema_nodes(child, f"{prefix}{key}.")


def child_nodes(node: DictConfig) -> Iterator[tuple[Any, DictConfig | ListConfig]]:
    """The mappings and lists a node holds. Interpolations are left out: ${hydra:...} values
    cannot resolve outside a run."""
    for key in node:
        if OmegaConf.is_interpolation(node, key) or OmegaConf.is_missing(node, key):
            continue
        child = node[key]
        if isinstance(child, DictConfig | ListConfig):
            yield key, child


def sets(override: str, key: str) -> bool:
    """Whether a command-line override sets `key` or a key below it."""
    return f"{override.split('=', 1)[0].lstrip('+~')}.".startswith(f"{key}.")


def typed(key: str, combo: Sequence[str]) -> str | None:
    """The override that sets `key` (or a key below it), as typed; the last one wins, as in Hydra."""
    return next((o.lstrip("+~") for o in reversed(combo) if sets(o, key)), None)


def shown(key: str, value: Any, combo: Sequence[str]) -> str:
    """`key=value` as the user typed it, when the command line set it (or a key below it)."""
    if (given := typed(key, combo)) is not None:
        return given
    if value is None:
        value = "null"
    return f"{key}={value}"


def check_schema(cfg: DictConfig, combo: Sequence[str]) -> None:
    """Required values, unknown keys, ranges and choices of every node that has a schema."""
    for prefix, node, fields in schema_nodes(cfg):
        check_node(node, fields, prefix, combo)


def check_targets(node: DictConfig, prefix: str = "") -> None:
    """Every `_target_` must name something importable: Hydra would say so only when it gets
    there, mid-run (an optimizer is built when fitting starts)."""
    target = node.get("_target_") if "_target_" in node else None
    if isinstance(target, str):
        hydra_log = logging.getLogger("hydra.utils")
        hydra_log.disabled = True  # it logs the failure too; one line is ours to print
        try:
            get_object(target)
        except Exception as error:  # Hydra wraps the import's own error as its cause
            reason = str(error.__cause__ or error).splitlines()[0]
            raise DigitsError(f"{prefix}_target_={target}: cannot import it ({reason})") from error
        finally:
            hydra_log.disabled = False
    for key, child in child_nodes(node):
        if isinstance(child, DictConfig):
            check_targets(child, f"{prefix}{key}.")
            continue
        for index, item in enumerate(child):
            if isinstance(item, DictConfig):
                check_targets(item, f"{prefix}{key}[{index}].")


def check_node(node: DictConfig, fields: Fields, prefix: str, combo: Sequence[str]) -> None:
    """One node against its schema's fields."""
    extra = getattr(OmegaConf.get_type(node), "EXTRA_KEYS", None)
    for key in node:
        if key not in fields and (extra is None or key not in extra.names):
            typed = shown(f"{prefix}{key}", node[key], combo)
            raise unknown_key(f"{prefix}{key}", typed, fields, extra)
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
            if isinstance(value, float) and not math.isfinite(value):
                problem = "not a finite number; must be"
            raise DigitsError(f"{shown(key, value, combo)}: {problem} {allowed.describe()}")


def settings_taken(node: DictConfig) -> set[str]:
    """The keys a node with a `_target_` takes: its schema's fields, or else its class's
    arguments (a class of your own); what it holds, where neither can be told."""
    fields = schema_fields(node)
    if fields is not None:
        return set(fields)
    try:
        return set(inspect.signature(get_object(node["_target_"])).parameters)
    except Exception:  # not importable or no signature: check_targets says so, in one line
        return {str(key) for key in node}


def check_by_signature(node: DictConfig, prefix: str, combo: Sequence[str] = ()) -> None:
    """A node with no stored schema whose `_target_` is your own class, checked as digits' own
    classes are: against the schema derived from its annotated signature (unknown and missing
    keys, types, ranges). A class whose arguments are not all annotated, or annotated with types
    a config cannot hold, is left to Python's own check of the call."""
    target = node.get("_target_")
    if schema_fields(node) is not None or not isinstance(target, str):
        return
    plumbing = tuple(str(key) for key in node if str(key).startswith("_") and key != "_target_")
    try:
        schema = schema_of(get_object(target), target=True, plumbing=plumbing)
        fields = {f.name: f for f in dataclasses.fields(schema)}
        empty = OmegaConf.structured(schema)
    except Exception:  # not a class, unannotated, or no config type for an annotation
        return
    try:
        typed = OmegaConf.merge(empty, node)
    except OmegaConfBaseException as error:
        name = str(getattr(error, "full_key", "") or "").split(".")[0]
        key = f"{prefix}{name}"
        if name in fields and isinstance(error, ValidationError):
            value = shown(key, node.get(name), combo)
            raise DigitsError(f"{value}: must be {describe(fields[name])}") from error
        raise unknown_key(key, shown(key, node.get(name), combo), fields) from error
    check_node(typed, fields, prefix, combo)


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


def unknown_key(
    key: str, typed: str, fields: Fields | list[str] | None, extra: ExtraKeys | None = None
) -> DigitsError:
    """No such key: say which keys there are (a schema's fields, or a plain node's keys), the
    nearest one to a typo, or how to pass another argument through (`extra`)."""
    known = [str(name) for name in fields or {} if not str(name).startswith("_")]
    where, _, name = key.rpartition(".")
    if extra is not None and name in extra.names:
        return DigitsError(
            f"{typed}: no such key in the config (to pass {extra.what}, use +{typed.lstrip('+')})"
        )
    close = difflib.get_close_matches(name, [*known, *(extra.names if extra else ())], n=2)
    dotted = [f"{where}.{match}" if where else match for match in close]
    guess = f"did you mean {' or '.join(dotted)}? " if close else ""
    if known:
        hint = f"{where or 'the top level'} takes: {', '.join(known)}"
        if extra is not None:
            hint += f", or {extra.what} with +{where}.<name>=..."
    else:
        hint = "see `--cfg job` for the keys"
    return DigitsError(f"{typed}: no such key in the config ({guess}{hint})")


def _nested_fields(cfg: DictConfig, key: str) -> Fields | None:
    """The fields of the Nested schema the setting at `key` takes (e.g. data.augment), if any."""
    parent = _parent(cfg, key)
    fields = schema_fields(parent) if parent is not None else None
    setting = fields.get(key.rpartition(".")[2]) if fields else None
    allowed = setting.metadata.get("allowed") if setting else None
    if not isinstance(allowed, Nested):
        return None
    return {f.name: f for f in dataclasses.fields(allowed.schema)}


def _parent(cfg: DictConfig, key: str) -> DictConfig | None:
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return node if isinstance(node, DictConfig) else None


def _is_null(cfg: DictConfig, key: str) -> bool:
    absent = object()
    return OmegaConf.select(cfg, key, default=absent) is None


def _under_null(cfg: DictConfig, key: str, combo: Sequence[str]) -> DigitsError:
    """A key set below a setting that is null (off), such as data.augment.rotation."""
    parent_key, _, name = key.rpartition(".")
    owner_key, _, field_name = parent_key.rpartition(".")
    owner = OmegaConf.select(cfg, owner_key) if owner_key else cfg
    fields = (schema_fields(owner) or {}) if isinstance(owner, DictConfig) else {}
    allowed = fields[field_name].metadata.get("allowed") if field_name in fields else None
    example = getattr(allowed, "example", "") or "{...}"
    return DigitsError(
        f"{typed(key, combo) or key}: {parent_key} is null (off), so it has no {name}; set it as a whole, "
        f"e.g. {parent_key}={example}"
    )


def _not_in_option(
    key: str, combo: Sequence[str], without: list[str], recompose: Callable[[list[str]], DictConfig]
) -> DigitsError | None:
    """A key the selected option of a config group lacks (scheduler.gamma with scheduler=none):
    name the options that have it (None when no option has it)."""
    group, _, name = key.rpartition(".")
    having = []
    for option in group_options(group):
        try:
            if name in (OmegaConf.select(recompose([*without, f"{group}={option}"]), group) or {}):
                having.append(option)
        except (ConfigCompositionException, OmegaConfBaseException):
            continue
    if not having:
        return None
    choices = " or ".join(f"{group}={option}" for option in having)
    return DigitsError(
        f"{typed(key, combo) or key}: the selected {group} has no {name}; it is a setting of {choices}"
    )


def composition_error(
    error: ConfigCompositionException,
    combo: list[str],
    recompose: Callable[[list[str]], DictConfig],
) -> DigitsError:
    """One line for a failed composition: a wrong type or an unknown key, said with the schema
    of the node the key is in (found by composing without the offending override)."""
    cause = error.__cause__
    key = (getattr(cause, "full_key", None) or "").split("[", 1)[0]  # a list element: the list
    without = [o for o in combo if not sets(o, key)]
    parent = None
    if key and without != combo:
        try:
            composed = recompose(without)
        except (ConfigCompositionException, OmegaConfBaseException):
            composed = None
        parent = _parent(composed, key) if composed is not None else None
        parent_key = key.rpartition(".")[0]
        if parent_key and composed is not None and _is_null(composed, parent_key):
            return _under_null(composed, key, combo)
    fields = schema_fields(parent) if parent is not None else None
    name = key.rsplit(".", 1)[-1]
    typed = shown(key, getattr(cause, "value", None), combo)
    if parent is not None and fields is None:  # a plain mapping: a Nested setting's, perhaps
        fields = _nested_fields(composed, key.rpartition(".")[0])
        if fields and name in fields and isinstance(cause, ConfigAttributeError | ConfigKeyError):
            return DigitsError(f"{typed}: not set by this config; add it with +{typed.lstrip('+')}")
    keys = fields if fields is not None else list(parent or [])
    if isinstance(cause, ValidationError) and key:
        what = describe(fields[name]) if fields and name in fields else "another type"
        return DigitsError(f"{typed}: must be {what}")
    if isinstance(cause, ConfigAttributeError | ConfigKeyError) and key:
        if parent is not None and group_options(key.rpartition(".")[0]):
            in_other_option = _not_in_option(key, combo, without, recompose)
            if in_other_option is not None:
                return in_other_option
        extra = getattr(OmegaConf.get_type(parent), "EXTRA_KEYS", None) if parent else None
        return unknown_key(key, typed, keys, extra)
    return DigitsError(" ".join(str(error).split()))

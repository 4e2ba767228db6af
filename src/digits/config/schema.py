"""Schemas: each setting's type and allowed values, declared once, where the setting is used.

A command's config and each config group extend a dataclass that Hydra's ConfigStore holds as
`schema_<name>` (`defaults: [/schema_data_mnist@_here_, _self_]`), so Hydra rejects wrong types and unknown
keys while composing, and `digits.config.validate` derives the rest of the up-front check (ranges,
choices, required values) and its messages from the same fields. Where a setting is an argument of
our own code (a network, the data module, the LightningModule, the server's options), that signature
declares it and `schema_of` derives the dataclass; the module that declares a schema stores it
(`store_schemas`). The values themselves, the defaults included, live in conf/.

This package imports no feature package: the features import it.
"""

import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from digits.constraints import OneOf, Range

# Field types OmegaConf checks itself; any other annotation is stored as Any (checked by `allowed`).
CHECKED_TYPES = (int, float, bool, str)


@dataclass(frozen=True)
class Nested:
    """A mapping checked against another schema, or null. (OmegaConf cannot merge a mapping into
    an optional dataclass field that is null, so such a field is typed Any and checked here.)"""

    schema: type
    example: str = ""

    def describe(self) -> str:
        return f"null or a mapping of {', '.join(f.name for f in dataclasses.fields(self.schema))}"


@dataclass(frozen=True)
class ExtraKeys:
    """Keys a node takes beyond its schema's fields (added with `+key=value`), and what they are."""

    what: str
    names: tuple[str, ...]


def setting(allowed: Range | OneOf | Nested | None = None, default: Any = MISSING) -> Any:
    """A dataclass field whose allowed values `digits.config.validate` enforces."""
    return field(default=default, metadata={"allowed": allowed})


def _field_type(hint: Any) -> tuple[Any, Any]:
    """(the type OmegaConf checks, the Annotated constraint or None) of an argument's annotation."""
    allowed, nullable = None, False
    if typing.get_origin(hint) is typing.Annotated:
        hint, allowed = typing.get_args(hint)[0], typing.get_args(hint)[1]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None, X | Y
        kinds = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        nullable = len(kinds) < len(typing.get_args(hint))
        hint = kinds[0] if len(kinds) == 1 else Any
    if typing.get_origin(hint) is typing.Annotated:  # Annotated[X, ...] | None
        hint, allowed = typing.get_args(hint)[0], typing.get_args(hint)[1]
    plain = hint in CHECKED_TYPES or (
        typing.get_origin(hint) is list and typing.get_args(hint)[0] in CHECKED_TYPES
    )
    if not plain or isinstance(allowed, Nested):
        return Any, allowed
    return (hint | None if nullable else hint), allowed


def schema_of(
    function: Any,
    leave_out: tuple[str, ...] = (),
    target: bool = False,
    plumbing: tuple[str, ...] = (),
) -> type:
    """The schema of a function's (or a class's) settings, derived from its signature: one field per
    argument, typed as annotated, allowing what its `Annotated` constraint allows, defaulting to its
    default (most have none: conf/ gives the values). `target`: a `_target_` first; `plumbing`:
    Hydra's other keys the YAML sets (e.g. `_convert_`). A class's `UNUSED_WITH` (settings another
    makes unused: digits.config.command_line.check_not_ignored) is the schema's too."""
    annotated = function.__init__ if isinstance(function, type) else function
    hints = typing.get_type_hints(annotated, include_extras=True)
    keys = ("_target_",) * target + plumbing
    fields: list[tuple[str, Any, Any]] = [
        (key, bool if key == "_recursive_" else str, field(default=MISSING)) for key in keys
    ]
    for name, parameter in inspect.signature(function).parameters.items():
        if name in leave_out:
            continue
        kind, allowed = _field_type(hints[name])
        default = MISSING if parameter.default is inspect.Parameter.empty else parameter.default
        fields.append((name, kind, setting(allowed, default)))
    name = f"{getattr(function, '__name__', 'Settings')}Config"
    unused = {"UNUSED_WITH": getattr(function, "UNUSED_WITH", {})}
    return dataclasses.make_dataclass(name, fields, namespace=unused)


def store_schemas(**schemas: type) -> None:
    """Store schemas in Hydra's ConfigStore as `schema_<name>`, for conf/ to extend. The module that
    declares a schema calls this when imported; a command imports the schemas its config uses."""
    store = ConfigStore.instance()
    for name, schema in schemas.items():
        store.store(name=f"schema_{name}", node=schema)

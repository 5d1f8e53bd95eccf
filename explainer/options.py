"""Options defined once: frozen, typed dataclasses whose fields carry their range, help and unit.

Every tunable setting of the engine (a region method's parameters, the search settings, SAM's
generator settings, a model source's inputs) is a field of an :class:`Options` dataclass,
declared with :func:`option`::

    @dataclass(frozen=True)
    class GridOptions(RegionOptions):
        cells_per_side: int = option(7, low=1, high=64, help="Cells along each side: 7 gives 49 regions.")

From that one declaration come: validation (``GridOptions(cells_per_side=0)`` raises the class's
``error`` type with a readable message), parsing from text (``--param cells_per_side=7`` on the
command line), the Streamlit widget of each field (``ui/forms.py`` reads :meth:`Options.specs`),
and the provenance stored with a result (:meth:`Options.to_dict`). Nothing else restates a
default, a range or a help text.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, get_type_hints

from explainer.errors import LimaError

KINDS = ("int", "float", "choice", "text", "path", "bool", "options")
T = TypeVar("T", bound="Options")


@dataclass(frozen=True)
class Spec:
    """What a field accepts and how it is presented.

    Attributes:
        help: one sentence for ``--help`` and the UI tooltip.
        low, high: inclusive bounds for numbers (None = unbounded).
        step: the UI's step for numbers.
        unit: e.g. "px"; shown beside numbers.
        choices: the accepted values of a "choice" field.
        labels: display names of choices (choice value -> text).
        label: the UI label (default: the field name with spaces).
        optional: None is accepted (meaning "automatic" or "not set").
        kind: one of KINDS; inferred from the annotation when empty.
        order: display order (lower first; ties keep declaration order).
        ui_high: a tighter upper bound for the UI's slider where the engine accepts more.
    """

    help: str = ""
    low: float | None = None
    high: float | None = None
    step: float | None = None
    unit: str = ""
    choices: tuple[Any, ...] = ()
    labels: Mapping[Any, str] | None = None
    label: str = ""
    optional: bool = False
    kind: str = ""
    order: int = 0
    ui_high: float | None = None


def option(default: Any, **spec: Any) -> Any:
    """A dataclass field with a default and its :class:`Spec` (see the module docstring)."""
    return dataclasses.field(default=default, metadata={"lima": Spec(**spec)})


def same_as(options: type[Options], name: str) -> Any:
    """A field with the same default and spec as ``options``'s field ``name`` (so a setting that
    two options classes share is still defined once)."""
    f = options.field(name)
    return dataclasses.field(default=f.default, metadata={"lima": f.spec})


@dataclass(frozen=True)
class Field:
    """One option as the CLI and the UI see it: name, kind, default and spec."""

    name: str
    kind: str
    default: Any
    spec: Spec
    options_type: type[Options] | None = None  # for kind "options": the nested Options class

    @property
    def label(self) -> str:
        return self.spec.label or self.name.replace("_", " ")

    def display(self, value: Any) -> str:
        """How a value is shown (choice labels, "automatic" for None)."""
        if value is None:
            return "automatic"
        if self.spec.labels and value in self.spec.labels:
            return self.spec.labels[value]
        return str(value)


_SPECS: dict[type, tuple[Field, ...]] = {}  # Options class -> its fields (a class never changes)


class Options:
    """Base of every options dataclass (subclasses are ``@dataclass(frozen=True)``).

    Values are validated and normalised on construction (ints from integral floats, floats from
    ints), so an options object is always valid. ``error`` is the :class:`LimaError` subclass
    raised for bad values; ``what`` names the options in messages.
    """

    error: ClassVar[type[LimaError]] = LimaError
    what: ClassVar[str] = "option"
    # How messages name a field and word an unknown name ({names}, {context}, {valid}).
    name_format: ClassVar[str] = "{name}"
    unknown_format: ClassVar[str] = "unknown {what}(s) {names}{context}; valid: {valid}"

    @classmethod
    def _named(cls, name: str) -> str:
        return cls.name_format.format(name=name, quoted=repr(name))

    def __post_init__(self) -> None:
        for f in self.specs():
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, _check(self, f, value))

    # -- introspection ----------------------------------------------------------------------
    @classmethod
    def specs(cls) -> list[Field]:
        """The fields in display order (worked out once per class: a page run asks dozens of
        times, and resolving the type hints costs about 1 ms each)."""
        cached = _SPECS.get(cls)
        if cached is None:
            cached = _SPECS[cls] = tuple(cls._specs())
        return list(cached)

    @classmethod
    def _specs(cls) -> list[Field]:
        hints = get_type_hints(cls)
        out = []
        for index, f in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
            spec = f.metadata.get("lima")
            if spec is None:
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
            kind, nested = spec.kind, None
            if not kind:
                kind, nested = _kind_of(hints.get(f.name), spec, default)
            elif kind == "options":
                nested = type(default)
            out.append((spec.order, index, Field(f.name, kind, default, spec, nested)))
        return [item for _, _, item in sorted(out, key=lambda t: (t[0], t[1]))]

    @classmethod
    def field(cls, name: str) -> Field:
        for f in cls.specs():
            if f.name == name:
                return f
        raise KeyError(name)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in cls.specs()]

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_mapping(
        cls: type[T], values: Mapping[str, Any] | None = None, *, ignore: tuple[str, ...] = (), context: str = ""
    ) -> T:
        """Build from a mapping (e.g. ``--param`` values or a saved config); missing names take
        their defaults, unknown names are an error that lists the valid ones (names in
        ``ignore`` are dropped silently, e.g. keys an older version stored; ``context`` says
        whose options these are, e.g. " for region method 'slico'")."""
        if not isinstance(values, (Mapping, type(None))):
            raise cls.error(f"{cls.what} values must be given by name, got {values!r}")
        values = dict(values or {})
        known = {f.name: f for f in cls.specs()}
        unknown = sorted(str(k) for k in values if k not in known and k not in ignore)
        if unknown:
            raise cls.error(
                cls.unknown_format.format(
                    what=cls.what,
                    names=", ".join(map(repr, unknown)),
                    context=context,
                    valid=", ".join(known) or "none",
                )
            )
        kwargs = {}
        for name, f in known.items():
            if name in values:
                value = values[name]
                if f.kind == "options" and isinstance(value, Mapping):
                    value = f.options_type.from_mapping(value)  # type: ignore[union-attr]
                kwargs[name] = value
        return cls(**kwargs)

    @classmethod
    def parse(cls: type[T], pairs: Mapping[str, str]) -> T:
        """Build from text values (command-line ``name=value`` pairs): numbers, None, booleans."""
        converted: dict[str, Any] = {}
        known = {f.name: f for f in cls.specs()}
        for name, text in pairs.items():
            f = known.get(name)
            if f is not None and f.kind == "choice" and isinstance(text, str) and text.strip() in f.spec.choices:
                converted[name] = text.strip()  # a choice named "auto" or "none" is that choice, not None
                continue
            if f is not None and f.kind == "text" and not f.spec.optional and isinstance(text, str):
                converted[name] = text.strip()  # text that cannot be None: "none" is a value (study conditions)
                continue
            converted[name] = _from_text(text, f.kind if f else "text")
        return cls.from_mapping(converted)

    def replace(self: T, **changes: Any) -> T:
        """A copy with some fields changed (validated)."""
        return type(self).from_mapping({**self.to_dict(), **changes})

    # -- output -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-able (nested options become dicts)."""
        out = {}
        for f in self.specs():
            value = getattr(self, f.name)
            out[f.name] = value.to_dict() if isinstance(value, Options) else value
        return out

    def changed(self) -> dict[str, Any]:
        """Only the fields that differ from their defaults."""
        return {f.name: v for f in self.specs() if (v := self.to_dict()[f.name]) != _plain(f.default)}

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(self.to_dict().items())

    def __getitem__(self, name: str) -> Any:
        """Read access by name (``config["weights"]["consistency"]``), as for a saved dict."""
        if name not in self.names():
            raise KeyError(name)
        return getattr(self, name)


# -- checking -----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.to_dict() if isinstance(value, Options) else value


def _kind_of(hint: Any, spec: Spec, default: Any) -> tuple[str, type | None]:
    """The kind of a field from its choices, its default and its annotation."""
    if spec.choices:
        return "choice", None
    if isinstance(default, Options):
        return "options", type(default)
    types = {t for t in (typing.get_args(hint) or (hint,)) if t is not type(None)}
    for kind, python_type in (("bool", bool), ("int", int), ("float", float), ("text", str)):
        if python_type in types:
            return kind, None
    return "text", None


def _check(owner: Options, f: Field, value: Any) -> Any:
    """Validate one value of ``owner``'s field ``f``; returns it normalised."""
    error, name = owner.error, owner._named(f.name)
    spec = f.spec
    if value is None:
        if spec.optional:
            return None
        raise error(f"{name} needs a value, got None")
    if f.kind == "bool":
        if not isinstance(value, bool):
            raise error(f"{name} must be true or false, got {value!r}")
        return value
    if f.kind == "int":
        value = _as_int(error, name, value)
    elif f.kind == "float":
        value = _as_float(error, name, value)
    elif f.kind == "choice":
        if value not in spec.choices:
            raise error(f"{name} must be one of {list(spec.choices)}, got {value!r}")
        return value
    elif f.kind == "path":
        if not isinstance(value, (str, os.PathLike)):
            raise error(f"{name} must be a file path, got {value!r}")
        return os.fspath(value)
    elif f.kind == "options":
        nested = f.options_type
        assert nested is not None
        if isinstance(value, Mapping):
            return nested.from_mapping(value)
        if not isinstance(value, nested):
            raise error(f"{name} must be {nested.__name__}, got {value!r}")
        return value
    elif f.kind == "text":
        if not isinstance(value, str):
            raise error(f"{name} must be text, got {value!r}")
        return value
    low, high = spec.low, spec.high
    if (low is not None and value < low) or (high is not None and value > high):
        unit = f" {spec.unit}" if spec.unit else ""
        if f.kind == "int" and low == 1 and high is None:
            bounds = "a positive integer"
        elif high is None:
            bounds = f">= {low:g}{unit}"
        elif low is None:
            bounds = f"<= {high:g}{unit}"
        else:
            bounds = f"in [{low:g}, {high:g}]{unit}"
        raise error(f"{name} must be {bounds}, got {value!r}")
    return value


def _as_int(error: type[LimaError], name: str, value: Any) -> int:
    """Ints and integral floats (UI sliders may send ``30.0``); never bools."""
    if isinstance(value, bool):
        raise error(f"{name} must be an integer, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer():
        return int(float(value))
    raise error(f"{name} must be an integer, got {value!r}")


def _as_float(error: type[LimaError], name: str, value: Any) -> float:
    """Finite real numbers; never bools."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise error(f"{name} must be finite, got {value!r}")
    return float(value)


def _from_text(text: Any, kind: str) -> Any:
    """A command-line value: numbers for number kinds, None for "none"/"auto", booleans."""
    if not isinstance(text, str):
        return text
    stripped = text.strip()
    if stripped.lower() in ("none", "auto", "automatic"):
        return None
    if kind == "bool" and stripped.lower() in ("true", "yes", "1", "false", "no", "0"):
        return stripped.lower() in ("true", "yes", "1")
    if kind in ("int", "float", "choice"):
        for cast in (int, float):
            try:
                return cast(stripped)
            except ValueError:
                pass
    return stripped


def parse_pairs(
    items: list[str] | tuple[str, ...], what: str, error: type[LimaError], split_commas: bool = True
) -> dict[str, str]:
    """["a=1", "b=x,c=2"] -> {"a": "1", "b": "x", "c": "2"} (values stay text).

    Raises:
        ``error``: an item that is not ``name=value``, or a name given twice.
    """
    out: dict[str, str] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in (item.split(",") if split_commas else [item]))):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or not key:
                raise error(f"{what} must look like name=value, got {part!r}")
            if key in out:
                raise error(f"{what}: {key!r} is given twice")
            out[key] = value.strip()
    return out


__all__ = ["KINDS", "Field", "Options", "Spec", "option", "parse_pairs", "same_as"]

"""Streamlit widgets generated from the engine's options dataclasses.

Each field of an :class:`explainer.options.Options` class becomes one widget: a slider for a
bounded integer, a number box for other numbers, a select box for a choice, a text box for a
path or text, a toggle for a flag; nested options become a row of widgets. Labels, ranges,
steps and help come from the field's metadata, so the dashboard never restates them. Every
widget keeps its value across page switches (``persist_state="session"``).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from explainer.errors import LimaError
from explainer.options import Field, Options
from ui.text import md, md_message


def key_of(prefix: str, name: str) -> str:
    """The widget key of one field (stable: tests and saved sessions use it)."""
    return f"{prefix}_{name}"


def field_widget(
    f: Field, key: str, default: Any, container: Any = st, disabled: bool = False, help: str | None = None
) -> Any:
    """One widget for one field; returns its value (None for an empty optional box)."""
    spec = f.spec
    label = md(f.label) + (f" ({spec.unit})" if spec.unit else "")
    tip = help or spec.help or None
    common = {"key": key, "help": tip, "disabled": disabled, "persist_state": "session"}
    # A value put in the session before the widget exists (a link's ?model= inputs) wins over the
    # default; given both, Streamlit logs a warning on the server, so the default is left out then.
    preset = key in st.session_state
    if f.kind == "choice":
        options = ([None] if spec.optional else []) + list(spec.choices)
        index = options.index(default) if default in options and not preset else 0
        return container.selectbox(label, options, index=index, format_func=f.display, **common)
    if f.kind == "bool":
        return container.toggle(label, value=bool(default) and not preset, **common)
    if f.kind in ("path", "text"):
        value = container.text_input(
            label,
            value="" if default is None or preset else str(default),
            placeholder="automatic" if spec.optional else None,
            **common,
        )
        return (value.strip() or None) if spec.optional else value
    high = spec.ui_high if spec.ui_high is not None else spec.high
    if f.kind == "int":
        if spec.optional:
            choices = [None] + list(range(int(spec.low or 0), int(high) + 1, int(spec.step or 1)))
            index = choices.index(default) if default in choices else 0
            return container.selectbox(
                label,
                choices,
                index=index,
                format_func=lambda v: "automatic" if v is None else f"{v} {spec.unit}".strip(),
                **common,
            )
        if spec.low is not None and high is not None:
            return container.slider(label, int(spec.low), int(high), int(default), int(spec.step or 1), **common)
        return container.number_input(
            label,
            int(spec.low) if spec.low is not None else None,
            int(high) if high is not None else None,
            int(default),
            int(spec.step or 1),
            **common,
        )
    return container.number_input(
        label,
        float(spec.low) if spec.low is not None else None,
        float(high) if high is not None else None,
        float(default),
        float(spec.step or 0.01),
        format="%.4g",
        **common,
    )


def options_form(
    options: type[Options],
    prefix: str,
    defaults: Options | None = None,
    container: Any = st,
    disabled: dict[str, str] | None = None,
    columns: int = 1,
) -> Options | None:
    """Widgets for every field of ``options``; returns the validated options, or None (after
    showing the reason) when the values do not make a valid set (e.g. a text field left empty).

    Args:
        prefix: widget keys are ``<prefix>_<field name>``.
        defaults: the starting values (default: the class's defaults), e.g. a CPU preset.
        disabled: field name -> why it is disabled (shown as its help).
        columns: lay the fields out in this many columns.
    """
    start = defaults or options()
    disabled = disabled or {}
    values: dict[str, Any] = {}
    cols = container.columns(columns) if columns > 1 else None
    for index, f in enumerate(options.specs()):
        where = cols[index % columns] if cols else container
        default = getattr(start, f.name)
        if f.kind == "options":
            nested = f.options_type
            assert nested is not None
            where.caption(md(f.spec.help))
            values[f.name] = options_form(nested, key_of(prefix, f.name), default, where, columns=len(nested.specs()))
            continue
        values[f.name] = field_widget(
            f, key_of(prefix, f.name), default, where, f.name in disabled, disabled.get(f.name)
        )
    if any(v is None for f in options.specs() if f.kind == "options" for v in [values[f.name]]):
        return None
    try:
        return options.from_mapping(values)
    except LimaError as exc:
        container.error(md_message(exc))
        return None

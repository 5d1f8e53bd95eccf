"""The in-browser step player and the what-if canvas (``assets/player/``): payloads and mounting.

A run's payload (the crop at the source resolution, the rank map, curves, per-step readouts)
is built once per run and sent once; the browser then steps and plays without round trips.
The component reports back only when the viewer stops on a step (``step``), asks for the next
run of a playlist (``goto``), or changes the what-if subset (``shown``).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from explainer import render, steps
from explainer.explanation import Explanation

_ASSETS = Path(__file__).resolve().parents[1] / "assets" / "player"
_component = st.components.v2.component(
    "lima_lens.player",
    js=(_ASSETS / "player.js").read_text(encoding="utf-8"),
    css=(_ASSETS / "player.css").read_text(encoding="utf-8"),
)
MODES = ("inline", "present", "whatif")
DEFAULT_FPS = {"inline": 2, "present": 2}


def _jpeg_url(image: np.ndarray, quality: int = 90) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _u16(array: np.ndarray) -> str:
    """A non-negative int map as base64 little-endian uint16 (region ids and ranks < 1024)."""
    return base64.b64encode(np.ascontiguousarray(array, dtype="<u2").tobytes()).decode("ascii")


@st.cache_data(max_entries=24, show_spinner=False)
def step_payload(key: str, has_source: bool, _exp: Explanation, _source: np.ndarray | None) -> dict:
    """What the step player needs for run ``key``, built once per run (the cache key is the run
    key and whether a source-resolution crop exists; the arrays themselves are not hashed)."""
    exp = _exp
    image = _source if _source is not None else exp.view
    return {
        "size": int(exp.labels.shape[0]),
        "n": exp.n_regions,
        "image": _jpeg_url(image),
        "image_side": int(image.shape[0]),
        "ranks": _u16(render.rank_map(exp.labels, exp.order)),
        "area": [float(a) for a in exp.area],
        "p_target": [float(p) for p in exp.insertion],
        "p_other": None if exp.tracked is None else [float(p) for p in exp.tracked_insertion],
        "subset": exp.minimal_subset_size,
        "target": exp.target,
        "other": exp.tracked,
        "target_name": exp.class_name(exp.target),
        "other_name": exp.class_name(exp.tracked),
        "steps": [r.to_dict() for r in steps.readouts(exp)],
    }


def step_player(
    exp: Explanation, key: str, start: int, hidden: str, mode: str = "inline", source: np.ndarray | None = None
) -> dict:
    """Mount the step player for run ``key``; returns the component's state: ``step`` (the step
    the viewer stopped on, or None before the first stop) and ``goto`` ("next"/"prev" on the
    run after PageDown/PageUp in the presenter view, else None)."""
    if mode not in ("inline", "present"):
        raise ValueError(f"mode must be 'inline' or 'present', got {mode!r}")
    data = {
        **step_payload(key, source is not None, exp, source),
        "id": f"{key}:{hidden}:{mode}",
        "mode": mode,
        "start": int(start),
        "hidden": hidden,
        "fps": DEFAULT_FPS[mode],
    }
    result = _component(
        key=f"player_{mode}_{key}",
        data=data,
        default={"step": None},
        on_step_change=lambda: None,
        on_goto_change=lambda: None,
        height="content",
    )
    return {"step": result.get("step"), "goto": result.get("goto")}


@st.cache_data(max_entries=24, show_spinner=False)
def whatif_payload(key: str, has_source: bool, _exp: Explanation, _source: np.ndarray | None) -> dict:
    exp = _exp
    image = _source if _source is not None else exp.view
    full = exp.insertion_probs[-1]
    predicted = exp.full_prediction
    return {
        "size": int(exp.labels.shape[0]),
        "n": exp.n_regions,
        "image": _jpeg_url(image),
        "image_side": int(image.shape[0]),
        "labels": _u16(exp.labels),
        "order": [int(r) for r in exp.order],
        "subset": exp.minimal_subset_size,
        "target": exp.target,
        "predicted": predicted,
        "target_name": exp.class_name(exp.target),
        "predicted_name": exp.class_name(predicted),
        "full_target": float(full[exp.target]),
        "full_predicted": float(full[predicted]),
    }


def whatif_canvas(
    exp: Explanation,
    key: str,
    shown: list[int],
    nonce: int,
    step: int,
    result: dict | None,
    source: np.ndarray | None = None,
    on_change=None,
) -> None:
    """Mount the what-if canvas: ``shown`` is the subset to draw when ``nonce`` changes (a
    preset from the server: a link, a flip); ``result`` the model's answer for the subset the
    browser last sent (keys shown, area, p_target, p_predicted, top)."""
    data = {
        **whatif_payload(key, source is not None, exp, source),
        "id": f"{key}:whatif",
        "mode": "whatif",
        "hidden": "black",
        "shown": [int(r) for r in shown],
        "nonce": int(nonce),
        "step": int(step),
        "result": result,
    }
    _component(
        key=whatif_key(key),
        data=data,
        default={"shown": None},
        on_shown_change=on_change or (lambda: None),
        height="content",
    )


def whatif_key(key: str) -> str:
    return f"whatif_{key}"

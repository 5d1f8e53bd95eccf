"""Per-step readouts of a finished explanation: what a viewer sees at each step of the insertion path.

The step player (in the browser), the presenter view's captions and the slide export all read
the same records, so a caption in a video says exactly what the player said on screen.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from explainer.explanation import Explanation
from explainer.objective import TERMS


@dataclass(frozen=True)
class StepReadout:
    """What the viewer is told at step ``step`` (0 = the empty image, N = the full image).

    Attributes:
        step: 0..N.
        area: revealed share of the image, in [0, 1].
        p_target: p(target) with the first ``step`` regions shown, in [0, 1].
        p_other: p(tracked class) likewise, or None when no other class is tracked.
        region: the region id added at this step (None at step 0).
        caption: one line, e.g. "region 6 added: p(space shuttle) 0.54 → 0.76".
        detail: how the search placed this region (front/tail, candidates, F and its terms), or
            a note for the steps the search did not evaluate.
        top: the five most probable classes at this step, as (class index, name, probability).
    """

    step: int
    area: float
    p_target: float
    p_other: float | None
    region: int | None
    caption: str
    detail: str
    top: tuple[tuple[int, str, float], ...]

    def to_dict(self) -> dict:
        record = asdict(self)
        record["top"] = [list(t) for t in self.top]
        return record


def caption(exp: Explanation, step: int) -> str:
    """The caption of step ``step``: which region came in and how p(target) moved.

    Step 0 reads "the empty image: p(NAME) 0.03"; step k ≥ 1 reads
    "region R added: p(NAME) a → b" with a = p at step k − 1 and b = p at step k.
    """
    name = exp.class_name(exp.target)
    p = exp.insertion
    if step == 0:
        return f"the empty image: p({name}) {p[0]:.2f}"
    region = int(exp.order[step - 1])
    return f"region {region} added: p({name}) {p[step - 1]:.2f} → {p[step]:.2f}"


def detail(exp: Explanation, step: int) -> str:
    """How the search placed the region of step ``step`` (its log row), in one sentence."""
    entry = exp.step_entry(step)
    if entry is None:
        return "The empty image." if step == 0 else "Placed last by the forward search, without a comparison."
    where = (
        "front (forward step, maximising F)"
        if entry["direction"] == "forward"
        else "tail (backward step, minimising F)"
    )
    terms = " · ".join(f"{t} {entry[t]:.3f}" for t in TERMS if t != "effectiveness" or entry[t])
    return (
        f"Region {entry['region']} went to the {where} among {entry['candidates']} candidates; "
        f"F = {entry['objective']:.3f} ({terms})."
    )


def readouts(exp: Explanation, top_k: int = 5) -> list[StepReadout]:
    """One :class:`StepReadout` per step, 0..N (N + 1 records)."""
    other = exp.tracked_insertion
    return [
        StepReadout(
            step=k,
            area=float(exp.area[k]),
            p_target=float(exp.insertion[k]),
            p_other=None if other is None else float(other[k]),
            region=None if k == 0 else int(exp.order[k - 1]),
            caption=caption(exp, k),
            detail=detail(exp, k),
            top=tuple(exp.top_classes(k, top_k)),
        )
        for k in range(exp.n_regions + 1)
    ]

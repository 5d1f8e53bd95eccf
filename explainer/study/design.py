"""Counterbalancing: which condition and budget each list shows each image in, the trial order,
and where the correct option sits.

**Cells.** A design cell is a (condition, budget) pair; "none" has no budget but fills one cell
per budget, so every condition weighs the same. The C·B cells are enumerated as
``k -> (k mod C, (k mod B + k div lcm(C, B)) mod B)``: every cell exactly once per C·B
consecutive k, and any run of consecutive k balanced over conditions and over budgets (counts
differ by at most one).

**Within-subject** (Latin square): mistake j, list l, gets cell k = j + l; correct image j gets
k = M + j + l, after the M main mistakes, so the list as a whole is one run of consecutive k too.
Across C lists an image meets every condition once; within a list every condition (and budget)
appears equally often among the mistakes, among the correct images and over the whole list,
exactly when a group holds a multiple of C·B images, else within one. (Without the offset, two
mistakes and two correct images with four conditions showed only two conditions per list.)

**Between-subject**: list l shows every image in condition l mod C; budgets rotate over the
images, in the same order (mistakes, then the correct images).

**Order**: practice trials first (between-subject: in the list's condition; within: the first
explanation method), then the main trials in a seeded shuffle per list, with the
attention checks at evenly spaced places. **Answer positions** (distinction, guess): within a
list the correct option's position cycles through 1..k in a seeded order, so each position is
correct equally often (within one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from explainer.study.options import NO_EXPLANATION, StudyOptions
from explainer.study.selection import SelectedImage, seeded_rng


@dataclass(frozen=True)
class Cell:
    """A design cell: a condition and a budget slot (``budget`` is None for "none")."""

    condition: str
    budget: float | str | None
    slot: int  # the budget's position in the study's list (kept for "none" too, for balance checks)


@dataclass(frozen=True)
class Trial:
    """One trial of one list, before any file exists.

    Attributes:
        list_index: 0-based list; position: 1-based place in the list.
        trial_type: "practice", "main" or "check".
        image: the image; cell: its condition and budget.
        answer_position: 1-based option holding the correct answer (distinction, guess), else None.
    """

    list_index: int
    position: int
    trial_type: str
    image: SelectedImage
    cell: Cell
    answer_position: int | None


def cell_sequence(conditions: Sequence[str], budgets: Sequence[float | str]) -> list[Cell]:
    """All C·B cells in the balanced enumeration of the module docstring."""
    c, b = len(conditions), len(budgets)
    period = math.lcm(c, b)
    cells = []
    for k in range(c * b):
        condition = conditions[k % c]
        slot = (k % b + k // period) % b
        cells.append(Cell(condition, None if condition == NO_EXPLANATION else budgets[slot], slot))
    return cells


def assign(
    images: Sequence[SelectedImage], options: StudyOptions, conditions: Sequence[str], budgets: Sequence[float | str]
) -> list[list[tuple[SelectedImage, Cell]]]:
    """Per list: every main image once, with its cell (see the module docstring)."""
    cells = cell_sequence(conditions, budgets)
    c, b = len(conditions), len(budgets)
    main = [im for im in images if im.role == "main"]
    mistakes = sum(not im.correct for im in main)
    out = []
    for list_index in range(options.lists):
        row = []
        for im in main:
            k = im.index + (mistakes if im.correct else 0)  # the image's place in the list's run of cells
            if options.design == "within":
                cell = cells[(k + list_index) % (c * b)]
            else:
                condition = conditions[list_index % c]
                slot = (k + list_index // c) % b
                cell = Cell(condition, None if condition == NO_EXPLANATION else budgets[slot], slot)
            row.append((im, cell))
        out.append(row)
    return out


def _positions(count: int, k: int, rng_parts: tuple) -> list[int]:
    """``count`` answer positions in 1..k, each used equally often (within one), seeded order."""
    cycle = [1 + t % k for t in range(count)]
    order = seeded_rng(*rng_parts).permutation(count)
    return [cycle[i] for i in order]


def build_lists(
    images: Sequence[SelectedImage], options: StudyOptions, conditions: Sequence[str], budgets: Sequence[float | str]
) -> list[list[Trial]]:
    """Every list's trials in order (see the module docstring)."""
    with_options = options.task in ("distinction", "guess")
    practice = [im for im in images if im.role == "practice"]
    checks = [im for im in images if im.role == "check"]
    first_method = next((c for c in conditions if c != NO_EXPLANATION), NO_EXPLANATION)
    check_cell = Cell(NO_EXPLANATION, None, 0)
    lists = []
    for list_index, row in enumerate(assign(images, options, conditions, budgets)):
        # Practice with an explanation (within); between-subject, with the list's own condition only,
        # so a control group (no explanation, random) never practises with another group's treatment.
        practiced = conditions[list_index % len(conditions)] if options.design == "between" else first_method
        practice_cell = Cell(practiced, None if practiced == NO_EXPLANATION else budgets[0], 0)
        order = seeded_rng(options.seed, "order", list_index).permutation(len(row))
        main = [row[i] for i in order]
        sequence: list[tuple[str, SelectedImage, Cell]] = [("practice", im, practice_cell) for im in practice]
        # Check m goes before main trial round((m + 1)·n / (checks + 1)): evenly spaced, none lost
        # when several land on the same place (few main trials).
        spots = [round((m + 1) * len(main) / (len(checks) + 1)) for m in range(len(checks))]
        for place, (im, cell) in enumerate(main):
            sequence += [("check", checks[m], check_cell) for m, spot in enumerate(spots) if spot == place]
            sequence.append(("main", im, cell))
        sequence += [("check", checks[m], check_cell) for m, spot in enumerate(spots) if spot >= len(main)]
        answers: dict[str, list[int]] = {}
        if with_options:
            for kind in ("practice", "main", "check"):
                count = sum(1 for t, _, _ in sequence if t == kind)
                answers[kind] = _positions(count, options.k, (options.seed, "answers", list_index, kind))
        seen: dict[str, int] = {}
        trials = []
        for position, (kind, im, cell) in enumerate(sequence, start=1):
            answer = None
            if with_options:
                answer = answers[kind][seen.get(kind, 0)]
                seen[kind] = seen.get(kind, 0) + 1
            trials.append(Trial(list_index, position, kind, im, cell, answer))
        lists.append(trials)
    return lists


__all__ = ["Cell", "Trial", "assign", "build_lists", "cell_sequence"]

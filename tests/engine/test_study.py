"""The study builder (issue #9): the bundle's invariants (study-design.md §4), checked on a tiny
classifier whose answers are known, on a 4×4 grid of regions."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter

import numpy as np
import pytest
import torch
from helpers import TinyCNN, make_classifier
from PIL import Image

from explainer import cli
from explainer.config import SearchOptions
from explainer.data import folder_set
from explainer.errors import LimaError, StudyError
from explainer.regions import RegionSpec, resolve_options
from explainer.scan import scan
from explainer.search import default_tracked
from explainer.store import RunStore, run_key
from explainer.study import StudyOptions, build_study, load_toml
from explainer.study.conditions import matched_random, prefix_length
from explainer.study.design import cell_sequence
from explainer.study.rendering import png_chunks

GRID = RegionSpec("grid", resolve_options("grid", cells_per_side=3))
NAME = re.compile(r"^stimuli/[0-9a-f]{12}\.png$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONDITIONS = ("lima", "smdl", "random", "none")
# 3 conditions x 2 budgets = 6 cells: 6 mistakes fill every cell once per list, 3 correct images every condition.
SMALL = {"conditions": "lima,random,none", "budgets": "0.25,0.5", "lists": 3, "mistakes": 6, "correct": 3}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 3-class TinyCNN and 30 random photos labelled so that every other one is a mistake."""
    root = tmp_path_factory.mktemp("study-set")
    clf = make_classifier(TinyCNN(3, seed=0), 3, batch_size=64)
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (24, 24, 3), dtype=np.uint8) for _ in range(30)]
    preds = clf.predict(np.stack([clf.view(Image.fromarray(a)) for a in photos])).argmax(1)
    for i, (photo, pred) in enumerate(zip(photos, preds)):
        label = int(pred) if i % 2 else (int(pred) + 1) % 3
        (root / str(label)).mkdir(exist_ok=True)
        Image.fromarray(photo).save(root / str(label) / f"photo{i:02d}.png")
    image_set = folder_set(root, clf.class_names)
    return clf, image_set, scan(clf, image_set), RunStore(tmp_path_factory.mktemp("runs"))


def build(tiny, **options):
    clf, image_set, scanned, runs = tiny
    defaults = {**SMALL, "size": 16, "seed": 7}
    return build_study(StudyOptions(**{**defaults, **options}), clf, image_set, GRID, scan_result=scanned, runs=runs)


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode())))


@pytest.fixture(scope="module")
def agreement(tiny):
    return build(tiny, practice=1, checks=1)


def test_files_names_checksums_and_pngs(agreement):
    files = agreement.files
    manifest = rows(files["manifest.csv"])
    required = "stimulus_id, file, sha256, image_id, image_name, source_sha256, correct, true_class, true_name, "
    required += "predicted_class, predicted_name, predicted_confidence, condition, target_class, budget, "
    required += "realized_area, revealed_regions, p_target, fill, size, run_key, seed"
    assert list(manifest[0])[:22] == required.split(", ")
    stimuli = {p for p in files if p.startswith("stimuli/")}
    assert stimuli == {r["file"] for r in manifest} and all(NAME.match(p) for p in stimuli)
    for r in manifest:
        assert hashlib.sha256(files[r["file"]]).hexdigest() == r["sha256"]
        assert r["file"] == f"stimuli/{r['stimulus_id']}.png"
    listed = dict(line.split("  ")[::-1] for line in files["checksums.sha256"].decode().splitlines())
    assert set(listed) == set(files) - {"checksums.sha256"}
    assert all(hashlib.sha256(files[p]).hexdigest() == h for p, h in listed.items())
    for p in stimuli:  # no text chunks, EXIF or anything else; one size and mode
        assert png_chunks(files[p]) == ["IHDR", "IDAT", "IEND"]
        image = Image.open(io.BytesIO(files[p]))
        assert image.size == (16, 16) and image.mode == "RGB"
    preload = json.loads(files["preload.json"])
    for name, trials in zip(sorted(preload), agreement.lists):
        assert set(preload[name]) == {t["stimulus"] for t in trials}
    assert {"README.txt", "study.json", "study.toml", "answer_key.csv", "contact_sheet.png"} <= set(files)
    study = json.loads(files["study.json"])
    assert study["seed"] == 7 and study["model"]["weights_hash"] and study["regions"]["method"] == "grid"


def test_participant_files_leak_no_condition_or_answer(agreement, tiny):
    clf = tiny[0]
    files = agreement.files
    manifest = {r["file"]: r for r in rows(files["manifest.csv"])}
    for path in files:
        if path.startswith(("stimuli/", "lists/")) or path == "preload.json":
            assert not any(c in path for c in CONDITIONS + clf.class_names)
    for path in (p for p in files if p.startswith("lists/") and p.endswith(".csv")):
        table = rows(files[path])
        assert list(table[0]) == ["trial_index", "trial_type", "stimulus", "shown_label"]
        assert all(IDENTIFIER.match(c) for c in table[0])
        for row in table:
            assert row["trial_type"] in ("practice", "main", "check")
            # the only class a row names is the model's prediction, the label the agreement task shows
            assert row["shown_label"] == manifest[row["stimulus"]]["predicted_name"]
            assert not any(c in v for c in CONDITIONS for k, v in row.items() if k != "shown_label")
        as_json = json.loads(files[path.replace(".csv", ".json")])
        assert [{k: str(v) for k, v in r.items()} for r in as_json] == table


def test_stimulus_pixels_areas_and_model_probability(agreement, tiny):
    clf, image_set, _, runs = tiny
    items = {it.name: it for it in image_set.items}
    from explainer.regions import propose_regions

    matched = 0
    for r in rows(agreement.files["manifest.csv"]):
        if r["role"] != "main":
            continue
        view = clf.view(items[r["image_name"]].load())
        labels = propose_regions(view, "grid", GRID.options)
        png = np.asarray(Image.open(io.BytesIO(agreement.files[r["file"]])))
        shown = np.isin(labels, [int(x) for x in r["revealed_regions"].split(";") if x]) | (r["condition"] == "none")
        assert np.array_equal(png[shown], view[shown]) and (png[~shown] == 0).all()  # fill black
        assert float(r["realized_area"]) == pytest.approx(shown.mean(), abs=1e-6)
        # p(target) of the stimulus as the model sees it
        p = clf.predict(png[None])[0][int(r["target_class"])]
        assert p == pytest.approx(float(r["p_target"]), abs=1e-3)
        if r["condition"] in ("lima", "smdl"):  # the ranked prefix whose area is closest to the budget
            search = "bidirectional" if r["condition"] == "lima" else "greedy"
            # the key the Explain page and `batch` give the same image and target (they follow the true class
            # beside the prediction of a mistake, else the runner-up), so their saved runs are reused here
            target, true, pred = int(r["target_class"]), int(r["true_class"]), int(r["predicted_class"])
            tracked = true if target == pred != true else default_tracked(clf.predict(view[None])[0], target)
            key = run_key(clf.describe(), view, labels, target, tracked, SearchOptions(search=search))
            assert key == r["run_key"] and runs.has(key) and runs.load(key).tracked == tracked
            order = runs.load(key).order
            k = prefix_length(labels, order, float(r["budget"]))
            assert r["revealed_regions"] == ";".join(str(x) for x in order[:k])
        if r["condition"] == "random":  # area-matched to LiMA's stimulus for the same image and budget
            lima = runs.load(r["run_key"])
            assert lima.config.search == "bidirectional" and lima.target == int(r["target_class"])
            reference = lima.area[prefix_length(labels, lima.order, float(r["budget"]))]
            assert abs(float(r["realized_area"]) - reference) <= 0.02
            matched += 1
    assert matched == 9  # every main image meets the random control once over the 3 lists


def test_lists_form_a_latin_square_with_balanced_cells(agreement):
    answers = [r for r in rows(agreement.files["answer_key.csv"]) if r["trial_type"] == "main"]
    lists = sorted({r["list"] for r in answers})
    assert len(lists) == 3
    per_image: dict[str, list[str]] = {}
    for name in lists:
        mine = [r for r in answers if r["list"] == name]
        assert len({r["image_id"] for r in mine}) == len(mine) == 9  # every image once
        for correct, size in (("false", 6), ("true", 3)):
            group = [r for r in mine if r["correct"] == correct]
            assert len(group) == size
            conditions = Counter(r["condition"] for r in group)
            assert set(conditions.values()) == {size // 3}  # every condition equally often
            if correct == "false":  # 6 mistakes = 3 conditions x 2 budgets: every cell once
                cells = Counter((r["condition"], r["budget"]) for r in group if r["condition"] != "none")
                assert len(cells) == 4 and set(cells.values()) == {1}
                assert Counter(r["budget"] for r in group if r["condition"] != "none") == {"0.25": 2, "0.5": 2}
        for r in mine:
            per_image.setdefault(r["image_id"], []).append(r["condition"])
    assert all(sorted(c) == ["lima", "none", "random"] for c in per_image.values())  # a Latin square
    practice_and_checks = [r for r in rows(agreement.files["answer_key.csv"]) if r["trial_type"] != "main"]
    assert Counter(r["trial_type"] for r in practice_and_checks) == {"practice": 3, "check": 3}


def test_a_list_balances_conditions_over_mistakes_and_correct_images_together(tiny):
    """Two mistakes and two correct images with four conditions: each list shows all four (the
    correct images continue the mistakes' run of cells instead of repeating its start)."""
    bundle = build(tiny, conditions="lima,smdl,random,none", budgets="0.5", lists=4, mistakes=2, correct=2)
    answers = [r for r in rows(bundle.files["answer_key.csv"]) if r["trial_type"] == "main"]
    for name in sorted({r["list"] for r in answers}):
        mine = [r for r in answers if r["list"] == name]
        assert sorted(r["condition"] for r in mine) == ["lima", "none", "random", "smdl"]
        for correct in ("false", "true"):
            assert len({r["condition"] for r in mine if r["correct"] == correct}) == 2


@pytest.mark.parametrize("c,b", [(4, 3), (2, 2), (4, 2), (3, 1), (1, 3)])
def test_cell_sequence_balances_any_run(c, b):
    cells = cell_sequence([f"m{i}" for i in range(c)], [0.1 * (j + 1) for j in range(b)])
    assert len({(x.condition, x.slot) for x in cells}) == c * b
    for length in range(1, 2 * c * b):
        run = [cells[k % (c * b)] for k in range(length)]
        for counts in (Counter(x.condition for x in run), Counter(x.slot for x in run)):
            assert max(counts.values()) - min(counts.values()) <= 1 if len(counts) > 1 else True


def test_same_seed_same_bytes_other_seed_only_seeded_parts(tiny, agreement):
    again = build(tiny, practice=1, checks=1)
    assert again.files == agreement.files
    listed = ",".join(r["image_name"] for r in rows(agreement.files["manifest.csv"]) if r["role"] == "main")
    everyone = {"images": ",".join(sorted(set(listed.split(",")))[:4]), "budgets": "0.25"}
    a, b = build(tiny, **everyone), build(tiny, **{**everyone, "seed": 8})
    assert a.files["checksums.sha256"] != b.files["checksums.sha256"]

    def unseeded(bundle, condition):
        return {
            (r["image_name"], r["target_class"], r["budget"]): (r["sha256"], r["p_target"], r["revealed_regions"])
            for r in rows(bundle.files["manifest.csv"])
            if r["condition"] == condition
        }

    assert unseeded(a, "lima") == unseeded(b, "lima") and unseeded(a, "none") == unseeded(b, "none")
    assert unseeded(a, "random") != unseeded(b, "random")  # drawn with the seed
    assert a.lists[0] != b.lists[0]  # orders and names are seeded


def test_a_rebuild_with_other_budgets_searches_nothing(tiny, agreement, monkeypatch):
    import explainer.study.conditions as conditions

    def no_search(*args, **kwargs):
        raise AssertionError("a rebuild must reuse the saved explanations")

    monkeypatch.setattr(conditions, "iter_search", no_search)
    bundle = build(tiny, budgets="0.2,0.4,minimal", lists=3)
    assert bundle.stats["searched"] == 0 and bundle.stats["reused"] > 0
    budgets = {r["budget"] for r in rows(bundle.files["manifest.csv"])}
    assert budgets == {"0.2", "0.4", "minimal", ""}


def test_distinction_task_balances_answer_positions(tiny):
    bundle = build(tiny, task="distinction", conditions="lima,random", lists=2, k=3, mistakes=2, correct=2)
    manifest = {r["file"]: r for r in rows(bundle.files["manifest.csv"])}
    answers = rows(bundle.files["answer_key.csv"])
    for trials, name in zip(bundle.lists, ("list_01", "list_02")):
        assert list(trials[0]) == ["trial_index", "trial_type", "stimulus", "option_1", "option_2", "option_3"]
        key = [r for r in answers if r["list"] == name]
        positions = Counter(int(r["answer"]) for r in key)
        assert max(positions.values()) - min(positions.values()) <= 1
        for trial, answer in zip(trials, key):
            assert manifest[trial["stimulus"]]["condition"] == "none"  # the plain image
            options = [manifest[trial[f"option_{i}"]] for i in (1, 2, 3)]
            assert len({o["target_class"] for o in options}) == 3
            assert {o["condition"] for o in options} == {answer["condition"]}
            chosen = options[int(answer["answer"]) - 1]
            assert chosen["target_class"] == answer["predicted_class"]  # the answer is the model's class
            assert answer["true_class"] in {
                o["target_class"] for o in options
            }  # mistakes: the true class is a candidate
            preload = json.loads(bundle.files["preload.json"])[name]
            assert {trial[f"option_{i}"] for i in (1, 2, 3)} <= set(preload)


def test_between_subject_design_shows_one_condition_per_list(tiny):
    bundle = build(tiny, design="between", conditions="lima,none", lists=2, mistakes=2, correct=2)
    answers = rows(bundle.files["answer_key.csv"])
    assert {r["list"]: r["condition"] for r in answers} == {"list_01": "lima", "list_02": "none"}
    assert len({r["condition"] for r in answers if r["list"] == "list_01"}) == 1
    # practice trials show the list's own condition: the no-explanation group never practises with LiMA
    bundle = build(tiny, design="between", conditions="lima,none", lists=2, mistakes=2, correct=2, practice=2)
    practice = [
        (r["list"], r["condition"]) for r in rows(bundle.files["answer_key.csv"]) if r["trial_type"] == "practice"
    ]
    assert sorted(practice) == [("list_01", "lima")] * 2 + [("list_02", "none")] * 2


def test_random_control_matches_area_on_uneven_regions():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.repeat(rng.integers(0, 40, (10, 10)), 8, 0), 8, 1)
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.reshape(80, 80).astype(np.int32)
    areas = np.bincount(labels.ravel()) / labels.size
    assert areas.max() > 3 * areas.min()  # regions of very different sizes
    for goal in (0.1, 0.25, 0.5):
        first = matched_random(labels, goal, np.random.default_rng(1))
        assert abs(areas[list(first)].sum() - goal) <= 0.02
        assert first == matched_random(labels, goal, np.random.default_rng(1))  # seeded
        assert first != matched_random(labels, goal, np.random.default_rng(2))
        # the naive control (same region count as a ranked prefix) misses the area by more
        count_matched = [areas[rng.permutation(len(areas))[: len(first)]].sum() for _ in range(50)]
        assert np.mean(np.abs(np.array(count_matched) - goal)) > abs(areas[list(first)].sum() - goal)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"lists": 4}, "multiple of the 3 conditions"),
        ({"task": "distinction", "conditions": "lima,none", "lists": 2}, "drop 'none'"),
        ({"mistakes": 99}, "only 15"),
        ({"conditions": "lima,nonsense", "lists": 2}, "nonsense"),
        ({"budgets": "0.1,1.5"}, "(0, 1]"),
        ({"task": "distinction", "conditions": "lima", "lists": 1, "checks": 1}, "attention checks"),
        ({"images": "nowhere.png"}, "nowhere.png"),
        ({"task": "guess", "conditions": "lima,random", "lists": 2, "correct": 1}, "set correct to 0"),
        ({"task": "distinction", "conditions": "lima,random", "lists": 2, "k": 4}, "4 classes; the model has 3"),
    ],
)
def test_bad_configurations_are_clear_errors(tiny, options, message):
    with pytest.raises(LimaError, match=re.escape(message)):
        build(tiny, **options)


def test_cli_study_with_a_config_file_rebuilds_the_same_bundle(tmp_path, capsys, monkeypatch):
    model = tmp_path / "tiny.pt"
    torch.jit.script(TinyCNN(3, seed=0)).save(str(model))
    names = tmp_path / "names.txt"
    names.write_text("".join(f"class {i}\n" for i in range(3)))
    folder = tmp_path / "set"
    rng = np.random.default_rng(1)
    for i in range(8):
        (folder / str(i % 3)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(folder / str(i % 3) / f"p{i}.png")
    model_args = ["--model", f"torchscript:{model}", "--class-names", str(names), "--quiet"]
    common = ["--regions", "grid", "--param", "cells_per_side=3", "--conditions", "random,none", "--lists", "2"]
    common += ["--budgets", "0.33", "--mistakes", "0", "--correct", "0", "--images", "p0.png,p1.png", "--size", "32"]
    rc = cli.main(["study", str(folder), *common, "--seed", "3", "--out", str(tmp_path / "a"), *model_args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "4 stimuli" in out and (tmp_path / "a.zip").is_file()
    written = load_toml(tmp_path / "a" / "study.toml")
    assert (
        written.options.seed == 3
        and written.regions == "grid"
        and written.params == {"cells_per_side": 3, "min_area": 0}
    )
    config = tmp_path / "study.toml"
    config.write_text((tmp_path / "a" / "study.toml").read_text())
    # the command the file's first line documents (the set is not recorded in the file: SET is named)
    documented = config.read_text().splitlines()[0].split("python -m explainer ", 1)[1].split()
    words = {"study.toml": str(config), "DIR": str(tmp_path / "b"), "SET": str(folder)}
    rc = cli.main([words.get(w, w) for w in documented] + model_args)
    assert rc == 0, capsys.readouterr().err
    assert (tmp_path / "a" / "checksums.sha256").read_bytes() == (tmp_path / "b" / "checksums.sha256").read_bytes()
    # a folder holding something else is refused before any work; exit 2, one line
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "mine.txt").write_text("keep")
    assert cli.main(["study", str(folder), *common, "--out", str(tmp_path / "c"), *model_args]) == 2
    assert "not empty" in capsys.readouterr().err and (tmp_path / "c" / "mine.txt").exists()
    with pytest.raises(StudyError):
        StudyOptions(task="agreement", target="topk").check()
    # --out . (the current, empty folder): the bundle goes there and the zip beside it, named after it
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert cli.main(["study", str(folder), *common, "--out", ".", *model_args]) == 0, capsys.readouterr().err
    assert (tmp_path / "here" / "manifest.csv").is_file() and (tmp_path / "here.zip").is_file()
    # a folder where the zip goes is refused before any work (nothing written)
    (tmp_path / "d.zip").mkdir()
    assert cli.main(["study", str(folder), *common, "--out", str(tmp_path / "d"), *model_args]) == 2
    assert "d.zip is a folder" in capsys.readouterr().err and not (tmp_path / "d").exists()


@pytest.mark.parametrize("look", ["black", "grey", "blur", "dimmed"])
def test_hidden_pixels_equal_the_fill_and_shown_pixels_the_view(look):
    from explainer.study.rendering import fill_look, stimulus

    view = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    mask = np.zeros((16, 16), bool)
    mask[2:9, 4:12] = True
    out = stimulus(view, mask, look, 16)
    assert np.array_equal(out[mask], view[mask])
    assert np.array_equal(out[~mask], fill_look(view, look)[~mask])
    expected = {"black": 0, "grey": 128}.get(look)
    if expected is not None:
        assert (out[~mask] == expected).all()
    big = stimulus(view, mask, look, 48)  # another size: the mask by nearest neighbour, no mixed pixel
    assert big.shape == (48, 48, 3) and big.dtype == np.uint8
    assert np.array_equal(big[6:27, 12:36][..., 0] >= 0, np.ones((21, 24), bool))
    outlined = stimulus(view, mask, look, 16, outline=True)
    assert (outlined != out).any() and np.array_equal(outlined[~mask], out[~mask])  # the outline is inside


@pytest.mark.parametrize("look", ["black", "grey", "blur", "dimmed"])
def test_the_search_sees_the_stimulus_participants_see(look):
    """study-design §3.3: the explanation is searched and scored with the fill participants see.
    At the model's resolution, the image the search composes for a subset is the stimulus."""
    import torch

    from explainer.compose import Composer
    from explainer.study.rendering import stimulus

    view = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(4), 256).reshape(32, 32)  # four bands of 8 rows
    composed = Composer(view, labels, torch.device("cpu"), look).images(torch.tensor([[True, False, True, False]]))
    seen = composed[0].permute(1, 2, 0).numpy() * 255
    shown = stimulus(view, np.isin(labels, [0, 2]), look, 32)
    assert np.abs(seen - shown).max() < 1e-3


def test_a_dimmed_study_searches_with_the_dimmed_fill(tiny):
    clf, _, _, runs = tiny
    bundle = build(tiny, fill="dimmed", conditions="lima,none", lists=2, mistakes=1, correct=1)
    doc = json.loads(bundle.files["study.json"])
    assert doc["resolved"]["search_settings"]["fill"] == "dimmed"
    keys = {r["run_key"] for r in rows(bundle.files["manifest.csv"]) if r["condition"] == "lima"}
    assert keys and all(runs.load(k).config["fill"] == "dimmed" for k in keys)


def test_guess_task_with_a_registry_method_as_condition(tiny):
    with pytest.raises(StudyError, match="at least 4 classes"):  # the true label is never an option
        build(tiny, task="guess", conditions="ablation,random", lists=2, k=3, mistakes=2, correct=0)
    bundle = build(tiny, task="guess", conditions="ablation,random", lists=2, k=2, mistakes=2, correct=0)
    manifest = {r["file"]: r for r in rows(bundle.files["manifest.csv"])}
    answers = rows(bundle.files["answer_key.csv"])
    clf = tiny[0]
    for trials, name in zip(bundle.lists, ("list_01", "list_02")):
        key = [r for r in answers if r["list"] == name]
        for trial, answer in zip(trials, key):
            shown = manifest[trial["stimulus"]]
            assert trial["shown_label"] == shown["true_name"]  # the guess task shows the true label
            labels = [trial[f"option_{i}"] for i in (1, 2)]
            assert len(set(labels)) == 2 and set(labels) <= set(clf.class_names)
            assert shown["true_name"] not in labels and shown["correct"] == "false"  # nothing given away
            assert labels[int(answer["answer"]) - 1] == shown["predicted_name"]
    ablation = [r for r in manifest.values() if r["condition"] == "ablation"]
    assert ablation and all("/" in r["run_key"] for r in ablation)  # kept in the method store


def test_true_target_and_between_lists_can_be_rebuilt_from_study_toml(tiny, tmp_path):
    bundle = build(tiny, target="true", conditions="lima,none", lists=2, mistakes=2, correct=0, design="between")
    manifest = rows(bundle.files["manifest.csv"])
    assert all(r["target_class"] == r["true_class"] for r in manifest)
    (tmp_path / "study.toml").write_bytes(bundle.files["study.toml"])
    again = load_toml(tmp_path / "study.toml")
    clf, image_set, scanned, runs = tiny
    regions = RegionSpec(again.regions, resolve_options(again.regions, **(again.params or {})))
    rebuilt = build_study(again.options, clf, image_set, regions, scan_result=scanned, runs=runs)
    assert rebuilt.files == bundle.files


def test_every_check_and_practice_trial_is_placed(tiny):
    from explainer.study.design import build_lists
    from explainer.study.selection import select_images

    _, image_set, scanned, _ = tiny
    options = StudyOptions(mistakes=1, correct=0, conditions="random", budgets="0.5", lists=1, practice=2, checks=3)
    trials = build_lists(select_images(image_set, scanned, options), options, ["random"], [0.5])[0]
    assert Counter(t.trial_type for t in trials) == {"practice": 2, "main": 1, "check": 3}
    assert [t.trial_type for t in trials[:2]] == ["practice", "practice"]
    assert [t.position for t in trials] == list(range(1, 7))


def test_command_line_text_none_is_the_condition_not_a_missing_value():
    # `study --conditions none` (a no-explanation-only study) once failed with "conditions needs a value, got None"
    parsed = StudyOptions.parse({"conditions": "none", "images": "auto", "lists": "1"})
    assert parsed.conditions == "none" and parsed.condition_names() == ["none"]
    assert parsed.images == "auto" and parsed.image_list() == ["auto"]


def test_study_json_records_what_ran_the_model(agreement, tiny):
    # p_target differs in its 6th decimal between PyTorch and ONNX Runtime (and CPU and CUDA): two bundles of the
    # same settings differ in manifest.csv, so study.json must say which backend, precision and device type ran
    clf = tiny[0]
    model = json.loads(agreement.files["study.json"])["model"]
    assert (model["backend"], model["precision"], model["device_type"]) == (clf.backend, clf.precision, "cpu")


def test_a_listed_name_shared_by_two_images_is_refused_not_guessed(tmp_path):
    from explainer.study.selection import select_images

    clf = make_classifier(TinyCNN(3, seed=0), 3)
    rng = np.random.default_rng(2)
    for label in ("0", "1"):  # 0/a.png and 1/a.png: the name "a.png" is ambiguous, the keys are not
        (tmp_path / label).mkdir()
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / label / "a.png")
    image_set = folder_set(tmp_path, clf.class_names)
    scanned = scan(clf, image_set)
    with pytest.raises(StudyError, match="a.png names 2 images"):
        select_images(image_set, scanned, StudyOptions(images="a.png", conditions="none", lists=1))
    key = image_set.items[0].key
    chosen = select_images(image_set, scanned, StudyOptions(images=key, conditions="none", lists=1))
    assert [c.item.key for c in chosen] == [key]

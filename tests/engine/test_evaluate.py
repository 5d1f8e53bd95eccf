"""The scorecard over a set (issue #8): every image × method, reuse of finished pairs, the
summary statistics by hand, and the `evaluate` command's JSON and CSV."""

from __future__ import annotations

import csv
import dataclasses
import io
import json

import numpy as np
import pytest
from helpers import TinyCNN, make_classifier
from PIL import Image

from explainer import cli
from explainer.comparison import MethodResult, MethodStore
from explainer.data import folder_set
from explainer.evaluate import EvaluationOptions, ImageEvaluation, bootstrap_ci, iter_evaluate, summarise, to_csv
from explainer.methods import Ranking
from explainer.progress import run_to_end
from explainer.regions import RegionSpec, resolve_options
from explainer.scoring import Scorecard


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("set")
    rng = np.random.default_rng(0)
    for label in range(3):
        (root / str(label)).mkdir()
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(root / str(label) / f"im{label}.png")
    clf = make_classifier(TinyCNN(3, seed=0), 3, batch_size=32)
    return clf, folder_set(root, clf.class_names)


GRID = RegionSpec("grid", resolve_options("grid", cells_per_side=2))


SCANS: dict = {}


def evaluate(clf, image_set, store=None, **options):
    from explainer.scan import scan

    if id(image_set) not in SCANS:  # as the CLI's scan cache does
        SCANS[id(image_set)] = scan(clf, image_set)
    scanned = SCANS[id(image_set)]
    return run_to_end(
        iter_evaluate(clf, image_set, GRID, EvaluationOptions(**options), methods_store=store, scan_result=scanned)
    )


def test_every_image_gets_every_method_and_a_summary(tiny_set, tmp_path):
    clf, image_set = tiny_set
    result = evaluate(clf, image_set, MethodStore(tmp_path), methods="lima,random,ablation,rise", equal_cost=True)
    assert len(result.images) == 3 and result.methods == ("lima", "random", "ablation", "rise")
    for im in result.images:
        assert set(im.results) == {"lima", "random", "ablation", "rise"}
        assert im.results["rise"].ranking.forward_passes == im.results["lima"].ranking.forward_passes  # equal cost
        assert im.results["ablation"].ranking.forward_passes == 5
    summary = result.summary()
    for method in result.methods:
        s = summary[method]
        assert s["insertion_auc"]["n"] == 3 and s["insertion_auc"]["ci"][0] <= s["insertion_auc"]["mean"]
        if method != "lima":
            assert 0.0 <= s["insertion_auc"]["vs_lima"]["lima_win_rate"] <= 1.0
    doc = result.to_dict()
    entry = doc["images"][0]
    assert {"name", "label", "target", "methods"} <= set(entry)
    assert set(entry["methods"]["lima"]) >= {
        "order",
        "insertion_auc",
        "deletion_auc",
        "highest_confidence",
        "forward_passes",
        "seconds",
    }
    assert set(entry["methods"]["lima"]["highest_confidence"]) == {"0.25", "0.5", "0.75", "1.0"}
    assert set(doc["summary"]) == set(result.methods)
    json.dumps(doc)  # JSON-able


def test_a_second_evaluation_reuses_every_finished_pair(tiny_set, tmp_path):
    clf, image_set = tiny_set
    store = MethodStore(tmp_path)
    evaluate(clf, image_set, store, methods="lima,ablation")
    calls = {"n": 0}
    real = clf.probs

    def counting(batch, **kw):
        calls["n"] += len(batch)
        return real(batch, **kw)

    clf.probs = counting  # type: ignore[method-assign]
    try:
        again = evaluate(clf, image_set, store, methods="lima,ablation")
    finally:
        del clf.probs
    assert len(again.images) == 3 and calls["n"] == 0  # not one model image


def test_errors_only_and_limit_select_images(tiny_set, tmp_path):
    clf, image_set = tiny_set
    predictions = clf.predict(np.stack([clf.view(it.load()) for it in image_set.items])).argmax(1)
    wrong = sum(int(p) != it.label for p, it in zip(predictions, image_set.items))
    assert len(evaluate(clf, image_set, MethodStore(tmp_path), methods="random", errors_only=True).images) == wrong
    assert len(evaluate(clf, image_set, MethodStore(tmp_path), methods="random", limit=2).images) == 2


def _fake(method: str, ins: float, dels: float) -> MethodResult:
    score = Scorecard(
        np.arange(2, dtype=np.int32),
        np.array([0, 0.5, 1.0]),
        np.zeros(3),
        np.zeros(3),
        None,
        None,
        ins,
        dels,
        {"0.25": None, "0.5": ins, "0.75": ins, "1.0": ins},
        {"0.25": None, "0.5": 0.5, "0.75": 0.5, "1.0": 0.5},
        (0,),
        6,
    )
    return MethodResult(Ranking(method, np.zeros(2), np.arange(2, dtype=np.int32), 10, 0, 1.0), score, {})


def test_the_summary_by_hand():
    """Three images: LiMA beats the baseline on insertion twice and ties once (win rate 5/6)."""
    pairs = [(0.6, 0.5, 0.1, 0.2), (0.7, 0.4, 0.1, 0.1), (0.5, 0.5, 0.3, 0.2)]
    images = [
        ImageEvaluation(
            f"im{i}", f"k{i}", 0, 0, None, 1, {"lima": _fake("lima", li, ld), "base": _fake("base", bi, bd)}
        )
        for i, (li, bi, ld, bd) in enumerate(pairs)
    ]
    s = summarise(images, ["lima", "base"])
    assert s["lima"]["insertion_auc"]["mean"] == pytest.approx(0.6)
    vs = s["base"]["insertion_auc"]["vs_lima"]
    assert vs["mean_diff"] == pytest.approx(((0.5 - 0.6) + (0.4 - 0.7) + 0) / 3)
    assert vs["lima_win_rate"] == pytest.approx((1 + 1 + 0.5) / 3)
    dels = s["base"]["deletion_auc"]["vs_lima"]  # lower is better: LiMA wins once, ties once
    assert dels["lima_win_rate"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert s["base"]["highest_confidence@0.25"]["n"] == 0  # no prefix within 25 %: left out


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = np.random.default_rng(3).normal(0.5, 0.1, 40)
    lo, hi = bootstrap_ci(values)
    assert lo < values.mean() < hi and bootstrap_ci(values) == (lo, hi)
    assert bootstrap_ci(np.array([0.3])) == (0.3, 0.3)


def test_the_csv_has_a_row_per_image_and_method(tiny_set, tmp_path):
    clf, image_set = tiny_set
    result = evaluate(clf, image_set, MethodStore(tmp_path), methods="random,ablation")
    text = to_csv(result)
    rows = list(csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#")))
    assert len(rows) == 6 and {r["method"] for r in rows} == {"random", "ablation"}
    assert "highest_confidence_0.25" in rows[0]


@pytest.mark.slow
def test_the_evaluate_command_writes_the_json_and_csv(lite0, tmp_path, capsys, monkeypatch):
    import explainer.models as models

    monkeypatch.setattr(models, "load_classifier", lambda *a, **k: lite0)
    monkeypatch.setenv("LIMA_RUNS_DIR", str(tmp_path / "runs"))
    out_json, out_csv = tmp_path / "e.json", tmp_path / "e.csv"
    rc = cli.main(
        [
            "evaluate",
            "demo",
            "--errors-only",
            "--limit",
            "1",
            "--methods",
            "lima,random,ablation",
            "--regions",
            "grid",
            "--param",
            "cells_per_side=3",
            "--json",
            str(out_json),
            "--csv",
            str(out_csv),
            "--quiet",
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "insertion" in out and "LiMA wins" in out
    doc = json.loads(out_json.read_text())
    [image] = doc["images"]
    assert (
        image["name"] and image["target"] == image["label"] and set(image["methods"]) == {"lima", "random", "ablation"}
    )
    assert doc["summary"]["random"]["insertion_auc"]["vs_lima"]["n"] == 1
    assert len([line for line in out_csv.read_text().splitlines() if not line.startswith("#")]) == 4


def test_bad_method_names_are_one_line(capsys):
    assert cli.main(["evaluate", "demo", "--methods", "lima,nosuch"]) == 2
    _, err = capsys.readouterr()
    assert err.startswith("lima: error:") and "nosuch" in err


def test_the_summary_is_valid_json_when_a_metric_has_no_values(tiny_set, tmp_path):
    """A set with nothing selected (or a budget no prefix fits) has no mean and no interval: the
    summary says None, never NaN, which is not JSON (jq, browsers and strict parsers refuse it)."""
    clf, image_set = tiny_set
    one = evaluate(clf, image_set, MethodStore(tmp_path), methods="lima,random", limit=1)
    large = dataclasses.replace(  # one region larger than 25 % of the image: no prefix fits 0.25
        one.images[0], results={m: _without_budget(r, "0.25") for m, r in one.images[0].results.items()}
    )
    for evaluation in (dataclasses.replace(one, images=(large,)), dataclasses.replace(one, images=())):
        doc = evaluation.to_dict()
        json.dumps(doc, allow_nan=False)  # raises on NaN
    assert doc["summary"]["random"]["insertion_auc"] == {"mean": None, "ci": None, "n": 0}


def _without_budget(result: MethodResult, key: str) -> MethodResult:
    score = dataclasses.replace(result.score, highest_confidence={**result.score.highest_confidence, key: None})
    return dataclasses.replace(result, score=score)


def test_a_method_that_cannot_run_is_reported_with_its_reason(tiny_set, tmp_path):
    """Grad-CAM on a TorchScript model: skipped, and the evaluation says why."""
    import torch

    _, image_set = tiny_set
    scripted = make_classifier(torch.jit.script(TinyCNN(3, seed=0)), 3, batch_size=32)
    result = evaluate(scripted, image_set, MethodStore(tmp_path), methods="random,gradcam", limit=1)
    assert "TorchScript" in result.provenance["unavailable"]["gradcam"]
    assert set(result.images[0].results) == {"random"}
    assert result.summary()["gradcam"]["insertion_auc"]["n"] == 0


def test_the_evaluate_command_makes_the_folders_of_its_outputs(tiny_set, tmp_path, capsys, monkeypatch):
    """--json/--csv in a folder that does not exist yet: checked before the work, made at the end
    (it used to fail after the whole evaluation with "No such file or directory")."""
    import explainer.models as models

    clf, image_set = tiny_set
    monkeypatch.setattr(models, "load_classifier", lambda *a, **k: clf)
    monkeypatch.setenv("LIMA_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LIMA_SCANS_DIR", str(tmp_path / "scans"))
    out_json, out_csv = tmp_path / "new" / "deeper" / "e.json", tmp_path / "other" / "e.csv"
    args = ["evaluate", str(image_set.root), "--methods", "random", "--limit", "1", "--regions", "grid"]
    rc = cli.main([*args, "--param", "cells_per_side=2", "--json", str(out_json), "--csv", str(out_csv), "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert json.loads(out_json.read_text())["images"][0]["methods"]["random"]["order"]
    assert "random" in out_csv.read_text()


def test_equal_cost_provenance_says_which_budgets_were_set_per_image(tiny_set, tmp_path):
    """In equal-cost mode the sampling methods' budgets are LiMA's passes on each image, not the
    defaults the provenance lists: it says so, and each image's passes show the value."""
    clf, image_set = tiny_set
    result = evaluate(clf, image_set, MethodStore(tmp_path), methods="lime,random", limit=1, equal_cost=True)
    assert result.provenance["equal_cost_fields"] == {"lime": "samples"}
    lima, lime = (result.images[0].results[m].ranking for m in ("lima", "lime"))
    assert lime.forward_passes == lima.forward_passes == lime.options["samples"]
    plain = evaluate(clf, image_set, MethodStore(tmp_path), methods="lime,random", limit=1)
    assert plain.provenance["equal_cost_fields"] == {}


def test_the_evaluate_command_names_the_images_it_could_not_use(tiny_set, tmp_path, capsys, monkeypatch):
    """A broken file and a listed file that is missing: evaluated without them, and named (as
    `scan` names them), not dropped in silence."""
    import explainer.models as models

    clf, _ = tiny_set
    monkeypatch.setattr(models, "load_classifier", lambda *a, **k: clf)
    monkeypatch.setenv("LIMA_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("LIMA_SCANS_DIR", str(tmp_path / "scans"))
    Image.fromarray(np.full((24, 24, 3), 90, np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "labels.txt").write_text("good.png 0\nbroken.png 1\nmissing.png 2\n")
    args = ["evaluate", str(tmp_path / "labels.txt"), "--methods", "random", "--regions", "grid", "--quiet"]
    assert cli.main([*args, "--param", "cells_per_side=2"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("1 images")
    assert "unreadable:" in err and "broken.png" in err
    assert "skipped:" in err and "missing.png" in err


def test_the_cost_estimate_follows_equal_cost_and_counts_the_scoring():
    """What the Scorecard page previews per image: each method's passes (a backward pass counted
    as two forward ones) plus the 2(N + 1) of its scoring; equal cost gives the sampling methods
    LiMA's passes, and runs LiMA even when it is not chosen."""
    from explainer.evaluate import estimate_passes
    from explainer.search import forward_pass_count

    n, lima = 49, forward_pass_count(49, "bidirectional", 8)
    scoring = 2 * (n + 1)
    assert estimate_passes(["lime"], n, equal_cost=False) == 1000 + scoring
    assert estimate_passes(["lime"], n, equal_cost=True) == 2 * (lima + scoring)  # LiMA runs too
    assert estimate_passes(["gradcam", "random"], n, equal_cost=True) == (lima + scoring) + (1 + 2 + scoring) + scoring

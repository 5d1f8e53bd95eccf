"""The Explain page's "Compare methods" shows, for each method, the result of the options chosen
now (default budgets or equal cost), when both were run on the same run's regions."""

from __future__ import annotations

from helpers import TinyCNN, make_classifier

from explainer.comparison import MethodStore, iter_method, resolve_options, subject_of
from explainer.progress import run_to_end
from ui import explain_compare


def test_the_equal_cost_toggle_picks_which_saved_result_is_shown(tiny_exp, tmp_path, monkeypatch):
    clf = make_classifier(TinyCNN(5, seed=0), 5, embeddings=True)  # the model tiny_exp was made with
    store = MethodStore(tmp_path)
    monkeypatch.setattr(explain_compare, "methods_store", lambda: store)
    subject = subject_of(tiny_exp, clf)
    budgets = {"default": None, "equal": tiny_exp.forward_passes}
    for passes in budgets.values():
        options = resolve_options("rise", None, passes)
        run_to_end(iter_method(subject, "rise", options, tiny_exp.tracked, tiny_exp.tolerance, store))
    assert tiny_exp.forward_passes != resolve_options("rise").masks
    for equal in (False, True, False):
        results = explain_compare.saved_results(tiny_exp, clf, equal_cost=equal)
        [rise] = [r for r in results if r.method == "rise"]
        expected = tiny_exp.forward_passes if equal else resolve_options("rise").masks
        assert rise.ranking.forward_passes == expected, equal


def _step_row_page(exp, clf, store_root):
    from explainer.comparison import MethodStore
    from ui import explain_compare

    explain_compare.methods_store = lambda: MethodStore(store_root)
    explain_compare.step_row(exp, clf, 4, "black")


SMALL = {"rise": {"masks": 20}, "lime": {"samples": 20}, "kernelshap": {"samples": 20}}  # fast enough


def test_the_step_row_shows_every_compared_method(tiny_exp, tmp_path):
    """With k regions, what *each* method reveals: all of them, not the first six."""
    from streamlit.testing.v1 import AppTest

    clf = make_classifier(TinyCNN(5, seed=0), 5, embeddings=True)
    store = MethodStore(tmp_path)
    subject = subject_of(tiny_exp, clf)
    names = ["smdl", "random", "ablation", "gradcam", "gradcam++", "ig", "rise", "lime", "kernelshap"]
    for name in names:
        options = resolve_options(name, SMALL.get(name))
        run_to_end(iter_method(subject, name, options, tiny_exp.tracked, tiny_exp.tolerance, store))
    at = AppTest.from_function(_step_row_page, args=(tiny_exp, clf, tmp_path), default_timeout=60).run()
    assert not at.exception
    captions = [c for img in at.get("image") for c in (img.proto.imgs[0].caption,)]
    assert sorted(c.split(" · ")[0] for c in captions) == sorted(["lima", *names])

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

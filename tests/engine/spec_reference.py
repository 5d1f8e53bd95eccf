"""A literal, slow restatement of lima-spec §4.1-4.2, used only to check the engine.

Written from the specification's pseudocode, deliberately naive: images are composed on the CPU
with numpy one candidate at a time, effectiveness uses the "+identity, row-min" formulation,
the pending set is a top-k of the forward scores, the loop runs ``int((N - p) / 2) + p`` times,
and the curves are assembled as ``increase + reversed(decrease) + [final]``. It shares no code
with ``explainer.search`` except the classifier's forward pass.
"""

from __future__ import annotations

import math

import numpy as np


class SpecSearch:
    def __init__(self, clf, view, labels, target, weights):
        self.clf, self.view, self.target = clf, view, target
        self.n = int(labels.max()) + 1
        self.masks = [labels == i for i in range(self.n)]
        self.w = weights
        self.distances = None
        if weights.get("effectiveness", 0):
            singles = np.stack([self.kept_image([i]) for i in range(self.n)])
            _, emb = clf.probs_and_embeddings(clf.to_batch(singles))
            g = emb.double().numpy()
            g = g / np.linalg.norm(g, axis=1, keepdims=True)
            self.distances = np.arccos(np.clip(g @ g.T, -1, 1)) / math.pi

    def kept_image(self, subset):
        m = np.zeros(self.view.shape[:2], bool)
        for i in subset:
            m |= self.masks[i]
        return np.where(m[..., None], self.view, 0).astype(np.uint8)

    def removed_image(self, subset):
        return (self.view - self.kept_image(subset)).astype(np.uint8)

    def probs(self, images):
        return self.clf.probs(self.clf.to_batch(np.stack(images))).double().numpy()

    def eff(self, subset):
        if self.distances is None or len(subset) <= 1:
            return 0.0
        block = self.distances[np.ix_(subset, subset)] + np.eye(len(subset))
        return float(block.min(axis=1).sum())

    def terms(self, sets):
        p_in = self.probs([self.kept_image(s) for s in sets])
        p_out = self.probs([self.removed_image(s) for s in sets])
        k = p_in.shape[1]
        conf = 1 - (-(p_in * np.log(p_in + 1e-7)).sum(1)) / math.log(k)
        cons, colla = p_in[:, self.target], 1 - p_out[:, self.target]
        eff = np.array([self.eff(s) for s in sets])
        return cons, colla, conf, eff

    def f(self, cons, colla, conf, eff):
        w = self.w
        return (
            w["consistency"] * cons
            + w["collaboration"] * colla
            + w["confidence"] * conf
            + w.get("effectiveness", 0) * eff
        )

    def greedy(self):
        s, cons_log, colla_log = [], [], []
        for _ in range(self.n):
            r = sorted(set(range(self.n)) - set(s))
            cons, colla, conf, eff = self.terms([s + [c] for c in r])
            a = int(np.argmax(self.f(cons, colla, conf, eff)))
            cons_log.append(cons[a])
            colla_log.append(colla[a])
            s.append(r[a])
        return s, np.array(cons_log), np.array(colla_log)

    def bidirectional(self, pending):
        n = self.n
        s, d = [], []
        cons_inc, colla_inc, cons_dec, colla_dec = [], [], [], []
        for _ in range(int((n - pending) / 2) + pending):
            r = sorted(set(range(n)) - set(s) - set(d))
            if len(r) == 1:
                s.append(r[0])
                break
            cons, colla, conf, eff = self.terms([s + [c] for c in r])
            a = int(np.argmax(self.f(cons, colla, conf, eff)))
            cons_inc.append(cons[a])
            colla_inc.append(colla[a])
            if len(r) > pending:
                eff_d = np.array([self.eff(d + [c]) for c in r])
                pre = self.f(cons, colla, conf, eff_d)
                q = [int(i) for i in np.argsort(pre, kind="stable")[:pending] if i != a]
                cons_d, colla_d, conf_d, _ = self.terms([d + [r[i]] for i in q])
                b = int(np.argmin(self.f(cons_d, colla_d, conf_d, eff_d[q])))
                cons_dec.append(1 - colla_d[b])  # = p(x − x_{D+b})[t]
                colla_dec.append(1 - cons_d[b])  # = 1 − p(x_{D+b})[t]
                d.append(r[q[b]])
            s.append(r[a])
        full, black = self.probs([self.view, np.zeros_like(self.view)])
        cons_score = cons_inc + cons_dec[::-1] + [full[self.target]]
        colla_score = colla_inc + colla_dec[::-1] + [1 - black[self.target]]
        return s + d[::-1], np.array(cons_score), np.array(colla_score)

"""Dawid-Skene EM recovers who is reliable and what the true labels are."""

from __future__ import annotations

import numpy as np

from annotation.quality.dawid_skene import dawid_skene


def _votes(accuracies, n_tasks=300, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_classes, n_tasks)
    t, u, lab = [], [], []
    for worker, acc in enumerate(accuracies):
        for task in range(n_tasks):
            right = rng.random() < acc
            label = truth[task] if right else rng.integers(0, n_classes)
            t.append(task)
            u.append(worker)
            lab.append(label)
    return truth, np.array(t), np.array(u), np.array(lab)


def test_reliability_separates_good_from_random_workers():
    accuracies = [0.9, 0.85, 0.9, 0.0, 0.0]  # two random clickers (accuracy 0 -> always a random label)
    truth, t, u, lab = _votes(accuracies)
    res = dawid_skene(t, u, lab, n_tasks=300, n_annotators=5, n_classes=3)
    assert np.all(res.reliability[:3] > 0.8)
    assert np.all(res.reliability[3:] < 0.5)
    assert (res.posteriors.argmax(axis=1) == truth).mean() > 0.95
    assert np.allclose(res.posteriors.sum(axis=1), 1.0)


def test_em_beats_majority_when_the_majority_is_unreliable():
    # Three random clickers outvote two experts; EM learns to trust the experts (gold anchors the labels).
    truth, t, u, lab = _votes([0.95, 0.95, 0.0, 0.0, 0.0], n_tasks=400, seed=2)
    counts = np.zeros((400, 3))
    np.add.at(counts, (t, lab), 1)
    majority_acc = (counts.argmax(axis=1) == truth).mean()
    gold = {k: int(truth[k]) for k in range(40)}
    res = dawid_skene(t, u, lab, n_tasks=400, n_annotators=5, n_classes=3, gold=gold)
    em_acc = (res.posteriors.argmax(axis=1) == truth).mean()
    assert em_acc > majority_acc + 0.05
    assert em_acc > 0.9
    assert res.reliability[:2].min() > res.reliability[2:].max() + 0.3

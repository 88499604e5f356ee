"""Dawid-Skene (1979) EM: latent true labels per task and a confusion matrix per annotator, from all votes.

Each annotator u has a confusion matrix pi_u[k, l] = P(u answers l | true label k); each task a posterior
T[t, k] over its true label. EM alternates: M-step (class priors and confusion matrices from the posteriors,
with additive smoothing so a sparse annotator is not certain), E-step (posteriors from priors times the
confusion entries of the votes cast). Gold tasks, when given, have their posterior clamped to the known answer
(semi-supervised), which anchors the labels. Reliability of u = sum_k prior_k pi_u[k, k], the probability u
answers a random task correctly. Votes stay a sparse list of (task, annotator, label) indices; every step is a
``np.bincount`` over them, so one EM iteration costs O(votes x classes), never tasks x annotators.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DawidSkeneResult:
    posteriors: np.ndarray  # (tasks, classes)
    priors: np.ndarray  # (classes,)
    confusion: np.ndarray  # (annotators, classes, classes)
    reliability: np.ndarray  # (annotators,)
    iterations: int


def dawid_skene(
    task_idx: np.ndarray,
    annotator_idx: np.ndarray,
    label_idx: np.ndarray,
    *,
    n_tasks: int,
    n_annotators: int,
    n_classes: int,
    gold: dict[int, int] | None = None,
    smoothing: float = 0.5,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> DawidSkeneResult:
    """Run EM from a majority-vote start. ``gold`` maps task index to its known class index."""
    t = np.asarray(task_idx, dtype=np.int64)
    u = np.asarray(annotator_idx, dtype=np.int64)
    lab = np.asarray(label_idx, dtype=np.int64)
    gold = gold or {}
    gold_t = np.fromiter(gold.keys(), dtype=np.int64, count=len(gold))
    gold_k = np.fromiter(gold.values(), dtype=np.int64, count=len(gold))

    # Majority vote (soft: vote shares) as the first posterior.
    post = np.bincount(t * n_classes + lab, minlength=n_tasks * n_classes).reshape(n_tasks, n_classes)
    post = post.astype(float)
    post += 1e-9
    post /= post.sum(axis=1, keepdims=True)
    if len(gold_t):
        post[gold_t] = 0.0
        post[gold_t, gold_k] = 1.0

    iterations = 0
    cell = u * n_classes + lab  # (annotator, answer) of each vote, fixed across iterations
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        # M-step: conf[u, k, l] += posterior of class k of the task of every vote (u, l).
        priors = post.sum(axis=0) + smoothing
        priors /= priors.sum()
        conf = np.full((n_annotators, n_classes, n_classes), smoothing / n_classes)
        conf[:, np.arange(n_classes), np.arange(n_classes)] += smoothing  # mild prior towards being right
        post_of_vote = np.ascontiguousarray(post.T)[:, t]  # (classes, votes), one gather
        for k in range(n_classes):
            conf[:, k, :] += np.bincount(
                cell, weights=post_of_vote[k], minlength=n_annotators * n_classes
            ).reshape(n_annotators, n_classes)
        conf /= conf.sum(axis=2, keepdims=True)
        # E-step: log posterior of class k = log prior + sum over the task's votes of log conf[u, k, l].
        log_post = np.tile(np.log(priors), (n_tasks, 1))
        log_conf_of_vote = np.log(conf).transpose(1, 0, 2).reshape(n_classes, -1)[:, cell]
        for k in range(n_classes):
            log_post[:, k] += np.bincount(t, weights=log_conf_of_vote[k], minlength=n_tasks)
        log_post -= log_post.max(axis=1, keepdims=True)
        new = np.exp(log_post)
        new /= new.sum(axis=1, keepdims=True)
        if len(gold_t):
            new[gold_t] = 0.0
            new[gold_t, gold_k] = 1.0
        delta = np.abs(new - post).max()
        post = new
        if delta < tol:
            break

    reliability = (conf[:, np.arange(n_classes), np.arange(n_classes)] * priors[None, :]).sum(axis=1)
    return DawidSkeneResult(
        posteriors=post, priors=priors, confusion=conf, reliability=reliability, iterations=iterations
    )

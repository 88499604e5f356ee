"""Builders of synthetic projects for the quality tests: tasks from three models of known strength, and
judgments in bulk with controlled answers, times and order."""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.utils import timezone

from annotation.models import Candidate, ComparisonTask, Judgment, Prompt, TaskKind, content_hash

MODELS = {"strong": 1.0, "mid": 0.0, "weak": -1.0}


@dataclass
class SyntheticProject:
    project: object
    tasks: list
    truth: dict  # task id -> true choice
    users: dict  # name -> user
    reviewer: object


def _build_tasks(project, n_standard: int, n_gold: int, rng: random.Random, tag: str = ""):
    names = list(MODELS)
    prompts = Prompt.objects.bulk_create(
        [
            Prompt(project=project, text=f"p{k}", content_hash=content_hash(f"p{project.pk}-{tag}{k}"))
            for k in range(n_standard + n_gold)
        ]
    )
    cands = []
    for p in prompts:
        first, second = rng.sample(names, 2)
        cands.append(
            Candidate(prompt=p, text=f"{p.pk}a", model_name=first, content_hash=content_hash(f"{p.pk}a"))
        )
        cands.append(
            Candidate(prompt=p, text=f"{p.pk}b", model_name=second, content_hash=content_hash(f"{p.pk}b"))
        )
    cands = Candidate.objects.bulk_create(cands)
    tasks, truth_choice = [], []
    for k, p in enumerate(prompts):
        a, b = cands[2 * k], cands[2 * k + 1]
        diff = MODELS[a.model_name] - MODELS[b.model_name]
        choice = "A" if rng.random() < 1 / (1 + 2.718281828 ** (-2 * diff)) else "B"
        gold = k >= n_standard
        tasks.append(
            ComparisonTask(
                project=project,
                prompt=p,
                candidate_a=a,
                candidate_b=b,
                kind=TaskKind.GOLD if gold else TaskKind.STANDARD,
                gold_choice=choice if gold else "",
            )
        )
        truth_choice.append(choice)
    tasks = ComparisonTask.objects.bulk_create(tasks)
    return tasks, {t.pk: c for t, c in zip(tasks, truth_choice, strict=True)}


def judge(user, tasks, answer, *, time_ms=lambda rng: rng.randint(5000, 12000), rng=None, start=None):
    """Bulk-create one judgment per task by ``user``; ``answer(task)`` gives the choice. Judgments are
    spaced a minute apart from ``start`` so their time order is the task order."""
    rng = rng or random.Random(0)
    start = start or timezone.now() - timezone.timedelta(days=2)
    objs = [
        Judgment(
            task=t, annotator=user, choice=answer(t), strength=rng.randint(1, 3), time_spent_ms=time_ms(rng)
        )
        for t in tasks
    ]
    objs = Judgment.objects.bulk_create(objs)
    for k, j in enumerate(objs):
        j.created_at = start + timezone.timedelta(minutes=k)
    Judgment.objects.bulk_update(objs, ["created_at"])
    return objs


def noisy(truth, rng, accuracy):
    def answer(task):
        return truth[task.pk] if rng.random() < accuracy else rng.choice(["A", "B", "tie"])

    return answer

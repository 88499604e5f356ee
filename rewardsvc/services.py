"""Writes for the reward service: recording scored samples and turning them into spot-check comparison
tasks in an annotation project, so humans check what the reward model rewards (the loop closes)."""

from __future__ import annotations

import json
import random
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from annotation.models import Candidate, ComparisonTask, Project, Prompt, TaskKind, content_hash
from annotation.services.projects import task_create
from rewardsvc.models import ScoredSample
from rewardsvc.scoring import RewardScorer, render_messages
from training.rm_encoding import can_normalize, normalize_rewards


@dataclass
class SpotCheckReport:
    """What ``scored_samples_to_project`` did."""

    tasks_created: int = 0
    prompts_used: int = 0
    samples_sent: int = 0
    skipped_single: int = 0
    task_ids: list[int] = field(default_factory=list)


def scored_samples_record(
    *, rows: Iterable[dict], reward_model_id: int | None = None, source: str = "traffic"
) -> int:
    """Store scored pairs (dicts with prompt or messages, response, reward, optional run_id); returns the
    number stored. Used off the hot path by the scoring server and by the spot-check page."""
    objs = []
    for row in rows:
        prompt = row.get("prompt")
        messages = prompt if isinstance(prompt, list) else row.get("messages")
        text = render_messages(messages) if isinstance(prompt, list) else str(prompt or "")
        objs.append(
            ScoredSample(
                reward_model_id=row.get("reward_model_id", reward_model_id),
                prompt=text,
                messages=messages,
                response=str(row["response"]),
                reward=float(row["reward"]),
                source=row.get("source", source),
                run_id=row.get("run_id"),
            )
        )
    ScoredSample.objects.bulk_create(objs, batch_size=500)
    return len(objs)


def _prompt_key(sample: ScoredSample) -> str:
    if sample.messages:
        return json.dumps(sample.messages, sort_keys=True, ensure_ascii=False)
    return sample.prompt


@transaction.atomic
def scored_samples_to_project(
    *,
    samples: Sequence[ScoredSample],
    project: Project,
    max_tasks: int | None = None,
    seed: int | None = None,
) -> SpotCheckReport:
    """Create spot-check comparison tasks from scored samples.

    Samples are grouped by prompt; within a prompt the distinct responses are sorted by reward and
    neighbours are paired (k responses give k-1 tasks: the close calls, where the RM is most likely to be
    wrong). A/B order is random. Each task's metadata keeps both rewards and the reward model, so the
    human verdicts can be compared with the RM's ordering. Prompts with a single response are skipped.
    Sent samples are marked with the project id; pairs already present in the project are not repeated.
    """
    rng = random.Random(seed)
    report = SpotCheckReport()
    groups: dict[str, list[ScoredSample]] = {}
    for sample in samples:
        groups.setdefault(_prompt_key(sample), []).append(sample)
    sent: list[int] = []
    for group in groups.values():
        distinct: dict[str, ScoredSample] = {}
        for sample in sorted(group, key=lambda s: s.id or 0, reverse=True):
            distinct.setdefault(sample.response, sample)
        if len(distinct) < 2:
            report.skipped_single += 1
            continue
        first = group[0]
        prompt_hash = content_hash(first.messages if first.messages else first.prompt)
        prompt, _ = Prompt.objects.get_or_create(
            project=project,
            content_hash=prompt_hash,
            defaults={
                "text": first.prompt,
                "messages": first.messages,
                "metadata": {"source": "spot_check"},
            },
        )
        ranked = sorted(distinct.values(), key=lambda s: s.reward)
        candidates = []
        for sample in ranked:
            cand, _ = Candidate.objects.get_or_create(
                prompt=prompt,
                content_hash=content_hash(sample.response),
                defaults={
                    "text": sample.response,
                    "model_name": f"rm-scored:{sample.source}",
                    # run_id: the policy run that wrote it, read back by reviewers' verdicts (per run counts).
                    "generation_params": {"scored_sample_id": sample.id, "run_id": sample.run_id},
                },
            )
            candidates.append((sample, cand))
        made = 0
        for (low, cand_low), (high, cand_high) in zip(candidates, candidates[1:], strict=False):
            if max_tasks is not None and report.tasks_created >= max_tasks:
                break
            exists = ComparisonTask.objects.filter(
                Q(candidate_a=cand_low, candidate_b=cand_high)
                | Q(candidate_a=cand_high, candidate_b=cand_low),
                project=project,
            ).exists()
            if exists:
                continue
            pair = [(low, cand_low), (high, cand_high)]
            rng.shuffle(pair)
            (sample_a, cand_a), (sample_b, cand_b) = pair
            task = task_create(
                project=project,
                candidate_a=cand_a,
                candidate_b=cand_b,
                kind=TaskKind.SPOT_CHECK,
                randomize_order=False,  # already shuffled above, with the report's seeded rng
                metadata={
                    "spot_check": {
                        "reward_model_id": sample_a.reward_model_id,
                        "reward_a": sample_a.reward,
                        "reward_b": sample_b.reward,
                        "rm_prefers": "A" if sample_a.reward > sample_b.reward else "B",
                        "scored_sample_ids": [sample_a.id, sample_b.id],
                        "run_ids": [sample_a.run_id, sample_b.run_id],
                    }
                },
            )
            report.task_ids.append(task.pk)
            report.tasks_created += 1
            made += 1
        if made:
            report.prompts_used += 1
            sent.extend(s.id for s, _ in candidates if s.id is not None)
    if sent:
        report.samples_sent = ScoredSample.objects.filter(id__in=sent).update(sent_to_project_id=project.pk)
    return report


# --- the spot-check page's scoring ----------------------------------------------------------------------

_scorers: OrderedDict[str, RewardScorer] = OrderedDict()
_scorers_lock = threading.Lock()


def scorer_for(reward_model) -> RewardScorer:
    """An in-process scorer for a registered RM (the two most recently used stay loaded)."""
    key = f"{reward_model.pk}:{reward_model.artifact_dir}"
    with _scorers_lock:
        if key in _scorers:
            _scorers.move_to_end(key)
            return _scorers[key]
        scorer = RewardScorer.load(
            reward_model.artifact_dir,
            max_length=reward_model.max_length,
            reward_mean=reward_model.reward_mean,
            reward_std=reward_model.reward_std,
            version=reward_model.version,
        )
        _scorers[key] = scorer
        while len(_scorers) > 2:
            _scorers.popitem(last=False)
        return scorer


def score_candidates(reward_model, prompt: str, candidates: list[str]) -> tuple[list[float], list[bool]]:
    """Rewards via the reward server when ``PREFLAB_RM_SERVER_URL`` is set (with ``PREFLAB_RM_SERVER_TOKEN``),
    else in-process with the same scoring code."""
    server = settings.PREFLAB_RM_SERVER_URL
    if server:
        from rewardsvc.client import PrefLabRewardClient

        with PrefLabRewardClient(server, settings.PREFLAB_RM_SERVER_TOKEN or None) as client:
            result = client.score([(prompt, c) for c in candidates], model=reward_model.version)
        return result.rewards, result.truncated
    scorer = scorer_for(reward_model)
    encoded = [scorer.encode(prompt, c) for c in candidates]
    return scorer.score_encoded(encoded), [e.truncated for e in encoded]


def spot_check_score(*, reward_model, prompt: str, candidates: Sequence[str]) -> list[dict]:
    """Score candidates for one prompt with ``reward_model``, best first (rank, text, reward, normalised
    reward where the card allows it, truncated), and record them as ``spot_check`` samples so they can be
    sent to annotators later."""
    rewards, truncated = score_candidates(reward_model, prompt, list(candidates))
    normalized = None
    if can_normalize(reward_model.reward_mean, reward_model.reward_std):
        normalized = normalize_rewards(rewards, reward_model.reward_mean, reward_model.reward_std)
    rows = [
        {
            "rank": 0,
            "text": c,
            "reward": r,
            "normalized": normalized[i] if normalized else None,
            "truncated": truncated[i],
        }
        for i, (c, r) in enumerate(zip(candidates, rewards, strict=True))
    ]
    rows.sort(key=lambda row: row["reward"], reverse=True)
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    scored_samples_record(
        rows=[
            {"prompt": prompt, "response": c, "reward": r} for c, r in zip(candidates, rewards, strict=True)
        ],
        reward_model_id=reward_model.pk,
        source="spot_check",
    )
    return rows

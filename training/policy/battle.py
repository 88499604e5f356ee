"""The evaluation gate: answers of base / SFT / policy on held-out prompts, scored by the reward model and
sent to humans as a pairwise "battle" annotation project (model names hidden, A/B order random).

The project's leaderboard (``annotation.selectors.quality.model_leaderboard``) then says whether the policy
really improved, next to the reward model's opinion and the length statistics kept in the battle report.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import transaction

from annotation.models import ModelPairing, Project, ProjectMembership, ServingOrder, TaskKind
from annotation.quality.active_pairing import validate_strategy
from training.configs import parse_config

RewardFn = Callable[[list[str], list[str]], list[float]]

BATTLE_GUIDELINES = (
    "Two assistants answered the same prompt. Pick the better answer (helpful, honest, harmless). "
    "Which model wrote which answer is hidden, and the A/B order is random."
)


@dataclass
class BattleConfig:
    """How the evaluation gate generates and sends answers."""

    enabled: bool = True
    """Run the gate at the end of a policy run."""
    held_out: int = 8
    """Prompts kept out of training and used for the battle."""
    max_new_tokens: int = 64
    """Answer length limit in tokens."""
    temperature: float = 0.0
    """0: greedy decoding (reproducible); otherwise sampling at this temperature."""
    base_model: str = ""
    """The pre-SFT model to include as "base" (default: the SFT run's base model when it is known)."""
    overlap_k: int = 1
    """Human judgments wanted per battle task."""
    seed: int = 0
    """Seed of sampling and of the A/B shuffles."""
    pairing_strategy: str = "uniform"
    """"uniform": model pairs are served in queue order; "active": the pair whose next vote shrinks the
    leaderboard intervals most is served first (``annotation.quality.active_pairing``), re-scored after
    every vote."""
    exploration: float = 0.1
    """With "active" pairing: share of tasks served at random (uniform exploration floor), in [0, 1]."""

    def errors(self) -> list[str]:
        """Problems with the pairing settings, each naming its field (empty when valid)."""
        return [
            f"battle.{name}: {msg}"
            for name, msg in validate_strategy(self.pairing_strategy, self.exploration).items()
        ]

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> BattleConfig:
        """Typed parse (``training.configs.parse_config``): wrong types and unknown fields are refused."""
        return parse_config(cls, data, what="battle config")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def generate_answers(
    model_dir: str,
    prompts: list[str],
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    use_chat_template: bool = True,
    batch_size: int = 8,
    seed: int = 0,
) -> list[str]:
    """One answer per prompt from a ``save_pretrained`` causal LM (chat template applied if it has one)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.policy.ppo import format_prompts

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    torch.manual_seed(seed)
    texts = format_prompts(tokenizer, prompts, use_chat_template)
    answers: list[str] = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(
                texts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
            )
            sampling = (
                {"do_sample": True, "temperature": temperature, "top_k": 0}
                if temperature > 0
                else {"do_sample": False}
            )
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                **sampling,
            )
            answers.extend(
                tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            )
    return [a.strip() for a in answers]


@dataclass
class BattleReport:
    """What the gate produced: per-model RM and length statistics, RM pairwise preferences, the project."""

    models: dict[str, dict[str, float]] = field(default_factory=dict)
    rm_pairwise: dict[str, float] = field(default_factory=dict)
    project_id: int | None = None
    tasks_created: int = 0
    identical_pairs: int = 0
    """Model pairs not sent because both models wrote the same answer (per prompt, summed)."""
    prompts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(answers: dict[str, list[str]], scores: dict[str, list[float]]) -> BattleReport:
    """Per-model mean/std reward and mean length (characters, words); for each model pair the share of prompts
    where the RM scores the first higher (ties count half)."""
    report = BattleReport(prompts=len(next(iter(answers.values()), [])))
    for name, texts in answers.items():
        s = scores[name]
        report.models[name] = {
            "rm_mean": statistics.fmean(s) if s else 0.0,
            "rm_std": statistics.pstdev(s) if len(s) > 1 else 0.0,
            "length_chars_mean": statistics.fmean(len(t) for t in texts) if texts else 0.0,
            "length_words_mean": statistics.fmean(len(t.split()) for t in texts) if texts else 0.0,
            "empty_fraction": sum(1 for t in texts if not t.strip()) / len(texts) if texts else 0.0,
        }
    for a, b in itertools.combinations(answers, 2):
        wins = [1.0 if x > y else 0.5 if x == y else 0.0 for x, y in zip(scores[a], scores[b], strict=True)]
        report.rm_pairwise[f"{a}>{b}"] = statistics.fmean(wins) if wins else 0.0
    return report


@transaction.atomic
def battle_project_create(
    *,
    name: str,
    prompts: list[str],
    answers: dict[str, list[str]],
    scores: dict[str, list[float]],
    created_by=None,
    members_from: Project | None = None,
    overlap_k: int = 1,
    seed: int = 0,
    run_id: int | None = None,
    pairing_strategy: str = "uniform",
    exploration: float = 0.1,
) -> tuple[Project, BattleReport]:
    """Create a battle project: one prompt per held-out prompt, one candidate per model (``model_name`` is the
    model label, which the leaderboard groups by), and a ``battle`` task for every pair of models.

    Members of ``members_from`` (the policy run's project) are added with their roles so they can judge.
    ``pairing_strategy="active"`` makes the project serve the most informative model pair first (with an
    ``exploration`` share at random) and scores the pairs once the tasks exist."""
    from annotation.services.pairing import pair_priorities_refresh
    from annotation.services.projects import candidate_create, project_create, prompt_create, task_create

    active = pairing_strategy == ModelPairing.ACTIVE
    pairing = (
        {"model_pairing": ModelPairing.ACTIVE, "serving_order": ServingOrder.MIX, "random_share": exploration}
        if active
        else {}
    )

    rng = random.Random(seed)
    report = summarize(answers, scores)
    project = project_create(
        created_by=created_by,
        name=name,
        guidelines=BATTLE_GUIDELINES,
        overlap_k=overlap_k,
        description=f"Evaluation gate of policy run {run_id}: {', '.join(answers)} on held-out prompts.",
        **pairing,
    )
    if members_from is not None:
        for m in ProjectMembership.objects.filter(project=members_from).exclude(user=created_by):
            ProjectMembership.objects.get_or_create(project=project, user=m.user, defaults={"role": m.role})
    seen: set[str] = set()
    for i, text in enumerate(prompts):
        if text in seen or not text.strip():
            continue
        seen.add(text)
        prompt = prompt_create(project=project, text=text, metadata={"source": "battle", "run_id": run_id})
        cands: dict[str, Any] = {}
        by_text: dict[str, str] = {}
        for model, texts in answers.items():
            answer = texts[i] if texts[i].strip() else "(empty answer)"
            if answer in by_text:  # two models wrote the same answer: nothing for a human to judge
                continue
            by_text[answer] = model
            cands[model] = candidate_create(
                prompt=prompt,
                text=answer,
                model_name=model,
                generation_params={"battle_run": run_id, "rm_score": scores[model][i]},
            )
        report.identical_pairs += math.comb(len(answers), 2) - math.comb(len(cands), 2)
        for a, b in itertools.combinations(cands, 2):
            task = task_create(
                project=project,
                candidate_a=cands[a],
                candidate_b=cands[b],
                kind=TaskKind.BATTLE,
                rng=rng,
            )
            side = {task.candidate_a_id: "A", task.candidate_b_id: "B"}
            task.metadata = {
                "battle": {
                    "run_id": run_id,
                    "rm_score_a": scores[a][i] if side[cands[a].pk] == "A" else scores[b][i],
                    "rm_score_b": scores[b][i] if side[cands[b].pk] == "B" else scores[a][i],
                }
            }
            task.save(update_fields=["metadata"])
            report.tasks_created += 1
    if active:
        pair_priorities_refresh(project=project)
    report.project_id = project.pk
    return project, report


def run_battle(
    *,
    models: dict[str, str],
    prompts: list[str],
    reward_fn: RewardFn,
    cfg: BattleConfig,
    project_name: str,
    created_by=None,
    members_from: Project | None = None,
    run_id: int | None = None,
) -> tuple[Project, BattleReport, dict[str, list[str]]]:
    """Generate with every model, score with the reward, create the battle project. Returns the answers too."""
    answers = {
        name: [  # PostgreSQL text refuses NUL, which a policy may decode (a byte-fallback token)
            a.replace("\x00", "")
            for a in generate_answers(
                path, prompts, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, seed=cfg.seed
            )
        ]
        for name, path in models.items()
    }
    scores = {name: [float(x) for x in reward_fn(prompts, texts)] for name, texts in answers.items()}
    project, report = battle_project_create(
        name=project_name,
        prompts=prompts,
        answers=answers,
        scores=scores,
        created_by=created_by,
        members_from=members_from,
        overlap_k=cfg.overlap_k,
        seed=cfg.seed,
        run_id=run_id,
        pairing_strategy=cfg.pairing_strategy,
        exploration=cfg.exploration,
    )
    return project, report, answers

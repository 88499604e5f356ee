"""Automatic flags: raised on synthetic bad annotators with reasons, not on good ones; quarantine state."""

from __future__ import annotations

import random

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from annotation.models import AnnotatorFlag, ComparisonTask, FlagStatus, Judgment, Role
from annotation.quality.flags import QualitySettings
from annotation.selectors.quality import (
    annotator_reliability,
    annotator_table,
    model_leaderboard,
    project_agreement,
    quarantined_annotator_ids,
)
from annotation.services.quality import flag_clear, flags_refresh
from tests.annotation.quality.synthetic import _build_tasks, judge, noisy
from tests.factories import add_member, make_project, make_user

pytestmark = pytest.mark.django_db


def _reasons(project):
    out = {}
    for f in AnnotatorFlag.objects.filter(project=project, status=FlagStatus.OPEN):
        out.setdefault(f.annotator.username.rsplit("-", 1)[0], set()).add(f.reason)
    return out


def test_flags_raised_on_bad_annotators_and_not_on_good_ones(synthetic_project):
    sp = synthetic_project
    created = flags_refresh(project=sp.project)
    reasons = _reasons(sp.project)
    assert not {"good1", "good2", "good3", "good4"} & set(reasons)
    assert "low_gold_accuracy" in reasons["random"]
    assert "low_agreement" in reasons["random"]
    assert "position_bias" in reasons["always_a"]
    assert reasons["too_fast"] == {"speed_outlier"}
    # Evidence carries the numbers and the thresholds that fired.
    bias = next(f for f in created if f.reason == "position_bias")
    assert bias.evidence["share_a"] == 1.0 and bias.evidence["p_value"] < 1e-20
    assert bias.evidence["threshold_share"] == 0.75
    fast = next(f for f in created if f.reason == "speed_outlier")
    assert fast.evidence["fast_share"] == 1.0 and fast.evidence["fast_ms"] == 2000
    # Refreshing again opens no duplicates.
    assert flags_refresh(project=sp.project) == []
    assert quarantined_annotator_ids(sp.project) == {
        sp.users[n].pk for n in ("random", "always_a", "too_fast")
    }


def test_thresholds_come_from_project_settings(synthetic_project):
    sp = synthetic_project
    sp.project.quality_settings = {"fast_ms": 100, "speed_ratio_min": 0.01, "position_bias_share": 1.01}
    sp.project.save()
    flags_refresh(project=sp.project)
    reasons = _reasons(sp.project)
    assert "too_fast" not in reasons
    assert "position_bias" not in reasons.get("always_a", set())
    assert QualitySettings.from_json({"fast_ms": "oops", "gold_min_items": "5"}).gold_min_items == 5


def test_clearing_lifts_quarantine_and_old_work_does_not_reflag(synthetic_project):
    sp = synthetic_project
    flags_refresh(project=sp.project)
    fast_user = sp.users["too_fast"]
    flag = AnnotatorFlag.objects.get(project=sp.project, annotator=fast_user)
    with pytest.raises(PermissionDenied):
        flag_clear(flag=flag, reviewer=sp.users["good1"], note="not mine to clear")
    cleared = flag_clear(flag=flag, reviewer=sp.reviewer, note="checked: fast but right")
    assert cleared.status == FlagStatus.CLEARED and cleared.cleared_by == sp.reviewer
    assert cleared.cleared_at is not None and cleared.clear_note == "checked: fast but right"
    with pytest.raises(ValidationError):
        flag_clear(flag=flag, reviewer=sp.reviewer)
    assert fast_user.pk not in quarantined_annotator_ids(sp.project)
    assert flags_refresh(project=sp.project) == []  # the cleared history is not re-judged
    # New fast work after the clearance is judged afresh and flags again.
    more, _ = _build_tasks(sp.project, 25, 0, random.Random(3), tag="more")
    judge(
        fast_user,
        more,
        lambda t: "B",
        time_ms=lambda r: 400,
        start=timezone.now() + timezone.timedelta(minutes=1),
    )
    again = flags_refresh(project=sp.project)
    assert [(f.annotator_id, f.reason) for f in again if f.annotator_id == fast_user.pk][0][
        1
    ] == "speed_outlier"
    assert AnnotatorFlag.objects.filter(annotator=fast_user).count() >= 2  # nothing deleted


def test_quarantine_removes_votes_from_leaderboard(synthetic_project):
    sp = synthetic_project
    before = model_leaderboard(sp.project, n_boot=50)
    assert before["n_comparisons"] == 7 * 80
    flags_refresh(project=sp.project)
    after = model_leaderboard(sp.project, n_boot=50)
    assert after["n_comparisons"] == 4 * 80
    assert after["order"] == ["strong", "mid", "weak"]


def test_reliability_and_tables(synthetic_project):
    sp = synthetic_project
    rel = annotator_reliability(project=sp.project)
    good = [rel[sp.users[f"good{k}"].pk] for k in range(1, 5)]
    assert min(good) > 0.8
    assert rel[sp.users["random"].pk] < 0.5
    assert rel[sp.users["random"].pk] < min(good) - 0.3
    table = annotator_table(sp.project)
    row = next(r for r in table["annotators"] if r["annotator"] == sp.users["always_a"].pk)
    assert row["share_a"] == 1.0 and row["n"] == 80 and row["gold_n"] == 20
    agreement = project_agreement(sp.project, n_boot=100)
    k = agreement["project"]["fleiss_kappa"]
    assert k["low"] < k["value"] < k["high"] and 0.2 < k["value"] < 0.8
    assert agreement["n_tasks"] == 80 and len(agreement["batches"]) == 1


def test_drift_flag_on_an_annotator_who_turns_random(db):
    rng = random.Random(11)
    project = make_project()
    tasks, truth = _build_tasks(project, 200, 0, rng)
    people = [make_user(Role.ANNOTATOR) for _ in range(4)]
    for u in people:
        add_member(project, u)
    for u in people[:3]:
        judge(u, tasks, noisy(truth, rng, 0.92), rng=rng)
    drifter = people[3]
    turned = {t.pk for t in tasks[130:]}
    judge(drifter, tasks, lambda t: rng.choice(["A", "B", "tie"]) if t.pk in turned else truth[t.pk], rng=rng)
    flags_refresh(project=project)
    flags = {(f.annotator_id, f.reason): f for f in AnnotatorFlag.objects.filter(project=project)}
    assert (drifter.pk, "drift") in flags
    assert not any(a in {u.pk for u in people[:3]} for a, _ in flags)
    evidence = flags[(drifter.pk, "drift")].evidence
    assert evidence["baseline"] > 0.85 and evidence["recent"] < evidence["baseline"] - 0.2


def test_agreement_per_import_batch(synthetic_project):
    sp = synthetic_project
    first = [t.pk for t in sp.tasks[:40]]
    ComparisonTask.objects.filter(pk__in=first).update(metadata={"import_batch": 5})
    ComparisonTask.objects.filter(project=sp.project).exclude(pk__in=first).update(
        metadata={"import_batch": 9}
    )
    out = project_agreement(sp.project, n_boot=0)
    assert [(b["batch"], b["n_tasks"], b["n_judgments"]) for b in out["batches"]] == [
        (5, 40, 280),
        (9, 40, 280),
    ]
    for b in out["batches"]:
        assert 0.0 < b["raw_agreement"]["value"] < 1.0 and b["raw_agreement"]["low"] is None


def test_swapped_repeats_measure_consistency_and_stay_out_of_the_leaderboard(synthetic_project):
    sp = synthetic_project
    originals = sp.tasks[:10]
    repeats = ComparisonTask.objects.bulk_create(
        [
            ComparisonTask(
                project=sp.project,
                prompt=t.prompt,
                candidate_a=t.candidate_b,
                candidate_b=t.candidate_a,
                kind="repeat",
                repeat_of=t,
            )
            for t in originals
        ]
    )
    mirror = {"A": "B", "B": "A", "tie": "tie"}
    good1, always_a = sp.users["good1"], sp.users["always_a"]
    answers = dict(
        Judgment.objects.filter(annotator=good1, task__in=originals).values_list("task_id", "choice")
    )
    judge(good1, repeats, lambda t: mirror[answers[t.repeat_of_id]], start=timezone.now())
    judge(always_a, repeats, lambda t: "A", start=timezone.now())
    rows = {r["annotator"]: r for r in annotator_table(sp.project)["annotators"]}
    assert rows[good1.pk]["repeat_n"] == 10 and rows[good1.pk]["repeat_consistency"] == 1.0
    assert rows[always_a.pk]["repeat_consistency"] == 0.0  # "A" both ways round contradicts itself
    assert model_leaderboard(sp.project, n_boot=0)["n_comparisons"] == 7 * 80
    assert project_agreement(sp.project, n_boot=0)["n_tasks"] == 80

"""The capability gate's optional lm-evaluation-harness layer: a custom local task run by the real harness in
a gate job, rows ``harness:<task>`` in PostgreSQL beside our sets, the API, the page and the promotion
gate's capability check; unknown task names; config refusal at creation."""

import json
import sys

import pytest
from django.urls import reverse

from tests.factories import make_prompt, token_client
from tests.training.policy.conftest import (
    assert_gate_config_refused,
    cancel_on_first_row,
    finished_policy_run,
)
from training import jobs
from training.models import CapabilityResult, JobStatus, TrainingRun
from training.policy import executors  # noqa: F401  (registers the executors)
from training.policy.capability.harness import HarnessTaskError, summarise_task
from training.policy.gate import PolicyGateConfig, check_capability

pytestmark = pytest.mark.django_db

QUESTIONS = [
    {"question": "2+2=?", "choices": ["3", "4"], "answer": 1},
    {"question": "Capital of France?", "choices": ["Paris", "Rome"], "answer": 0},
    {"question": "Colour of the sky?", "choices": ["green", "blue"], "answer": 1},
    {"question": "1+1=?", "choices": ["2", "5"], "answer": 0},
]


def _write_tasks(root):
    """Two custom harness tasks over one 4-line local JSONL: a multiple-choice and a generation task."""
    root.mkdir(parents=True, exist_ok=True)
    data = root / "questions.jsonl"
    data.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    common = (
        f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n"
        'doc_to_text: "{{question}}"\n'
    )
    (root / "pl_mc.yaml").write_text(
        f"task: pl_mc\n{common}output_type: multiple_choice\n"
        'doc_to_choice: "{{choices}}"\ndoc_to_target: "{{answer}}"\n'
        "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
    )
    (root / "pl_gen.yaml").write_text(
        f"task: pl_gen\n{common}output_type: generate_until\n"
        'doc_to_target: "{{choices[answer]}}"\n'
        'generation_kwargs:\n  until: ["\\n"]\n  max_gen_toks: 4\n  do_sample: false\n'
        "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n"
    )
    return root


@pytest.fixture
def task_root(tmp_path, settings):
    settings.PREFLAB_HARNESS_TASK_ROOTS = [tmp_path.resolve()]
    return _write_tasks(tmp_path / "harness_tasks")


def test_harness_tasks_run_in_the_gate_job_beside_our_sets(
    tiny_causal_lm_dir, engineer_project, task_root, settings, client
):
    engineer, project = engineer_project
    policy = finished_policy_run(project, engineer, tiny_causal_lm_dir, settings)
    api = token_client(engineer, ("train",))
    url = reverse("policy-run-capability", args=[policy.pk])
    gate_config = {
        "sets": ["arithmetic"],
        "max_items": 4,
        "max_new_tokens": 4,
        "batch_size": 4,
        "bootstrap_samples": 50,
        "harness_tasks": ["pl_mc", "pl_gen"],
        "harness_include_path": str(task_root),
        "harness_include_defaults": False,
    }
    resp = api.post(url, {"gate": gate_config}, format="json")
    assert resp.status_code == 202, resp.content
    gate = TrainingRun.objects.get(pk=resp.json()["id"])

    jobs.run_execute(run_id=gate.pk)
    gate.refresh_from_db()
    assert gate.status == JobStatus.SUCCEEDED, gate.status_reason
    assert gate.step == gate.total_steps == 2 * (4 + 2 * 4)  # models x (set items + tasks x max_items)
    rows = CapabilityResult.objects.filter(run=gate)
    assert sorted(rows.values_list("model_role", "task_set")) == [
        (role, name)
        for role in ("policy", "sft")
        for name in ("arithmetic", "harness:pl_gen", "harness:pl_mc")
    ]
    for row in rows.filter(task_set__startswith="harness:"):
        assert row.policy_run_id == policy.pk and row.n == len(QUESTIONS)
        assert 0 <= row.ci_low <= row.score <= row.ci_high <= 1
        assert [d["id"] for d in row.details] == [0, 1, 2, 3]
        assert row.score == pytest.approx(sum(d["score"] for d in row.details) / len(QUESTIONS))
    # The generation task keeps the answers; the multiple-choice one has none to keep.
    assert all("answer" in d for d in rows.get(task_set="harness:pl_gen", model_role="sft").details)
    # The policy is a copy of the SFT model: the same scores on every task.
    for name in ("harness:pl_mc", "harness:pl_gen"):
        assert len(set(rows.filter(task_set=name).values_list("score", flat=True))) == 1
    assert "sft harness:pl_mc:" in gate.log_tail and "(acc,none)" in gate.log_tail

    policy.refresh_from_db()
    cap = policy.summary["capability"]
    assert cap["status"] == "succeeded" and set(cap["sets"]) == {
        "arithmetic",
        "harness:pl_mc",
        "harness:pl_gen",
    }
    row = rows.get(task_set="harness:pl_mc", model_role="policy")
    assert cap["sets"]["harness:pl_mc"]["policy"] == {
        "score": row.score,
        "low": row.ci_low,
        "high": row.ci_high,
        "n": 4,
    }

    # The promotion gate's capability check reads the harness tasks like our sets.
    check = check_capability(cap, PolicyGateConfig())
    assert check["passed"], check
    assert set(check["values"]["sets"]) == {"arithmetic", "harness:pl_mc", "harness:pl_gen"}
    regressed = json.loads(json.dumps(cap))
    regressed["sets"]["harness:pl_mc"]["sft"] = {"score": 1.0, "low": 1.0, "high": 1.0, "n": 4}
    regressed["sets"]["harness:pl_mc"]["policy"] = {"score": 0.0, "low": 0.0, "high": 0.0, "n": 4}
    check = check_capability(regressed, PolicyGateConfig())
    assert not check["passed"] and "harness:pl_mc" in check["detail"]

    listed = api.get(url, {"gate_run_id": gate.pk}).json()
    assert {(r["model_role"], r["task_set"], r["n"]) for r in listed["results"]} >= {
        ("sft", "harness:pl_mc", 4),
        ("policy", "harness:pl_gen", 4),
    }
    assert listed["capability"]["sets"]["harness:pl_gen"]["sft"]["n"] == 4

    client.force_login(engineer)
    page = client.get(reverse("training:policy_detail", args=[policy.pk])).content.decode()
    assert 'data-set="harness:pl_mc"' in page and 'data-set="harness:pl_gen"' in page
    assert "lm-evaluation-harness task pl_mc" in page


def test_cancel_stops_between_harness_tasks(tiny_causal_lm_dir, engineer_project, task_root, settings):

    from training.policy.capability.services import gate_run_create

    engineer, project = engineer_project
    policy = finished_policy_run(project, engineer, tiny_causal_lm_dir, settings)
    gate = gate_run_create(
        policy_run=policy,
        config={
            "sets": [],
            "max_items": 2,
            "harness_tasks": ["pl_mc", "pl_gen"],
            "harness_include_path": str(task_root),
            "harness_include_defaults": False,
        },
        enqueue=False,
    )

    with cancel_on_first_row(CapabilityResult):
        jobs.run_execute(run_id=gate.pk)
    gate.refresh_from_db()
    assert gate.status == JobStatus.CANCELLED
    # A harness-only gate: the SFT model's first task was scored, then the cancel stopped the run.
    assert list(CapabilityResult.objects.filter(run=gate).values_list("model_role", "task_set")) == [
        ("sft", "harness:pl_mc")
    ]
    policy.refresh_from_db()
    assert policy.summary["capability"]["status"] == "cancelled"


def test_an_unknown_harness_task_fails_the_gate_before_any_model_runs(
    tiny_causal_lm_dir, engineer_project, task_root, settings
):
    from training.policy.capability.services import gate_run_create

    engineer, project = engineer_project
    policy = finished_policy_run(project, engineer, tiny_causal_lm_dir, settings)
    gate = gate_run_create(
        policy_run=policy,
        config={
            "sets": ["arithmetic"],
            "max_items": 2,
            "harness_tasks": ["pl_mc", "pl_nope"],
            "harness_include_path": str(task_root),
            "harness_include_defaults": False,
        },
        enqueue=False,
    )
    jobs.run_execute(run_id=gate.pk)
    gate.refresh_from_db()
    assert gate.status == JobStatus.FAILED
    assert "unknown lm-evaluation-harness task 'pl_nope'" in gate.status_reason, gate.status_reason
    assert "pl_mc'" not in gate.status_reason
    assert not CapabilityResult.objects.filter(run=gate).exists()
    policy.refresh_from_db()
    assert policy.summary["capability"]["status"] == "failed"


@pytest.mark.parametrize(
    ("gate", "field", "words"),
    [
        ({"harness_tasks": ["../tasks/x.yaml"]}, "gate.harness_tasks", "is not a task name"),
        ({"harness_tasks": ["gsm*"]}, "gate.harness_tasks", "is not a task name"),
        ({"harness_tasks": ["x" * 25]}, "gate.harness_tasks", "at most 24 characters"),
        ({"harness_tasks": ["gsm8k", "gsm8k"]}, "gate.harness_tasks", "listed twice"),
        ({"harness_tasks": [f"t{i}" for i in range(9)]}, "gate.harness_tasks", "PREFLAB_MAX_GATE_HARNESS_TASKS"),
        ({"harness_tasks": "gsm8k"}, "gate.harness_tasks", ""),
        ({"harness_tasks": ["gsm8k"], "harness_include_path": "/no/such/dir"}, "gate.harness_include_path", "not a directory"),
        ({"harness_tasks": ["gsm8k"], "harness_include_path": "OUTSIDE"}, "gate.harness_include_path", "PREFLAB_HARNESS_TASK_ROOTS"),
        ({"harness_tasks": ["pl_mc"], "harness_include_defaults": False}, "gate.harness_include_defaults", "needs gate.harness_include_path"),
        ({"harness_tasks": ["gsm8k"], "harness_batch": 4}, "gate.harness_batch", ""),
    ],
)  # fmt: skip
def test_bad_harness_configs_are_400_and_create_nothing(
    gate, field, words, tiny_causal_lm_dir, engineer_project, task_root, settings, tmp_path_factory
):
    if gate.get("harness_include_path") == "OUTSIDE":
        gate = {**gate, "harness_include_path": str(tmp_path_factory.mktemp("elsewhere"))}
    engineer, project = engineer_project
    make_prompt(project, "Hello?")
    policy = finished_policy_run(project, engineer, tiny_causal_lm_dir, settings)
    assert words in assert_gate_config_refused(engineer, project, policy, gate, field)


def test_harness_tasks_without_lm_eval_installed_are_refused(
    tiny_causal_lm_dir, engineer_project, settings, monkeypatch
):
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # what an install without the harness extra sees
    engineer, project = engineer_project
    policy = finished_policy_run(project, engineer, tiny_causal_lm_dir, settings)
    client = token_client(engineer, ("train",))
    before = TrainingRun.objects.count()
    url = reverse("policy-run-capability", args=[policy.pk])
    resp = client.post(url, {"gate": {"harness_tasks": ["gsm8k"]}}, format="json")
    message = resp.json()["error"]["message"]
    assert resp.status_code == 400 and "gate.harness_tasks" in message and "harness extra" in message
    assert TrainingRun.objects.count() == before
    # Without harness tasks the gate never needs lm_eval.
    assert client.post(url, {"gate": {"sets": ["format"]}}, format="json").status_code == 202


def test_summarise_a_group_and_a_task_without_a_gate_metric():
    group = {
        "results": {"grp": {"alias": "grp", "acc,none": 0.5, "acc_stderr,none": 0.1}},
        "higher_is_better": {"grp": {"acc": True}},
        "group_subtasks": {"grp": ["a", "b"]},
        "n-samples": {"a": {"original": 9, "effective": 6}, "b": {"original": 9, "effective": 4}},
        "samples": {"a": [], "b": []},
    }
    outcome = summarise_task("grp", group, n_boot=100, seed=0)
    assert outcome.task_set == "harness:grp" and outcome.metric == "acc,none"
    assert (outcome.interval.score, outcome.interval.n) == (0.5, 10)
    assert outcome.interval.low == pytest.approx(0.304) and outcome.interval.high == pytest.approx(0.696)

    perplexity = {
        "results": {"wt": {"alias": "wt", "word_perplexity,none": 35.2, "bits_per_byte,none": 1.4}},
        "higher_is_better": {"wt": {"word_perplexity": False, "bits_per_byte": False}},
    }
    with pytest.raises(HarnessTaskError, match=r"'wt': no higher-is-better metric in \[0, 1\]"):
        summarise_task("wt", perplexity, n_boot=100, seed=0)

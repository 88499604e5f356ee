"""No small input may ask for unbounded work: every list, file and count a client sends has a cap.

Each hostile body or file below is a few kilobytes that used to expand into gigabytes or hundreds of
thousands of rows. Each must now be refused with a 400 that names the field (and the line) and the limit,
or be handled, with a memory peak under 300 MB above the process before the call (measured after a
warm-up, by tracemalloc and by the resident set's high-water mark) and no row left behind in PostgreSQL.
No wall-clock asserts: the machine is shared; memory and row counts are what would have blown up.
The caps are listed in docs/security.md.
"""

from __future__ import annotations

import gzip
import json

import pytest
from rest_framework.test import APIClient

from annotation.models import Judgment, Role, TokenScope
from tests.factories import make_candidate, make_project, make_prompt, make_token, make_user
from tests.security.importer import Importer, counts, memory_peak

pytestmark = pytest.mark.usefixtures("require_postgres")

BUDGET = 300 * 1024 * 1024  # bytes above the idle process


def _within_budget(measured) -> None:
    rss = "n/a" if measured.rss is None else f"{measured.rss / 1e6:.1f} MB"
    print(f"memory peak above the process: traced {measured.traced / 1e6:.1f} MB, RSS {rss}")  # -s shows it
    assert measured.traced < BUDGET, f"traced peak {measured.traced / 1e6:.0f} MB"
    if measured.rss is not None:
        assert measured.rss < BUDGET, f"RSS peak {measured.rss / 1e6:.0f} MB above the process before"


@pytest.fixture
def importer(db) -> Importer:
    return Importer()


def _hostile(importer: Importer, data: bytes, name: str, **fields):
    """Upload ``data`` twice (the first is the warm-up) and return (error, measured memory) of the second,
    asserting a 400 and that nothing was written."""
    before = counts()
    importer.upload(data, name, **fields)
    measured = memory_peak(lambda: importer.upload(data, name, **fields))
    error = importer.refused(measured.result, 400)
    assert counts() == before
    _within_budget(measured)
    return error


# --- K-way ranking ---------------------------------------------------------------------------------------


class Ranker:
    def __init__(self, n_candidates: int) -> None:
        self.user = make_user(Role.ANNOTATOR)
        self.project = make_project(members=[(self.user, Role.ANNOTATOR)])
        self.prompt = make_prompt(self.project)
        self.ids = [make_candidate(self.prompt, f"answer {i}").pk for i in range(n_candidates)]
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(self.user, [TokenScope.ANNOTATE])}")

    def rank(self, order: list[int]):
        return self.client.post(f"/api/v1/prompts/{self.prompt.pk}/rank", {"order": order}, format="json")


def test_ranking_of_200_candidates_is_refused_naming_the_limit(db, settings):
    """The reproduced attack: 200 ids (1.4 KB, an annotate-only token) used to expand into 19,900 tasks and
    19,900 judgments in one transaction."""
    ranker = Ranker(200)
    assert ranker.project.max_ranking_length == settings.PREFLAB_RANKING_LENGTH_DEFAULT == 8
    before = counts()
    ranker.rank(ranker.ids)
    measured = memory_peak(lambda: ranker.rank(ranker.ids))
    response = measured.result
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["fields"]["order"] == [
        "Rank at most 8 candidates (the project's max_ranking_length); got 200."
    ]
    assert counts() == before
    _within_budget(measured)


def test_ranking_up_to_the_project_cap_expands_to_every_pair(db):
    ranker = Ranker(9)
    response = ranker.rank(ranker.ids[:8])
    assert response.status_code == 201, response.content
    assert response.json()["judgments"] == 8 * 7 // 2
    assert Judgment.objects.filter(task__project=ranker.project).count() == 28


def test_project_ranking_cap_is_bounded_by_the_hard_maximum(db, settings):
    """An engineer may raise the project's cap up to PREFLAB_MAX_RANKING_LENGTH, not past it."""
    engineer = make_user(Role.ENGINEER)
    ranker = Ranker(17)
    ranker.project.memberships.create(user=engineer, role=Role.ENGINEER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(engineer, [TokenScope.TRAIN])}")
    url = f"/api/v1/projects/{ranker.project.pk}/"
    too_high = client.patch(url, {"max_ranking_length": 17}, format="json")
    assert too_high.status_code == 400, too_high.content
    assert "PREFLAB_MAX_RANKING_LENGTH" in too_high.json()["error"]["fields"]["max_ranking_length"][0]
    assert client.patch(url, {"max_ranking_length": 1}, format="json").status_code == 400
    ok = client.patch(url, {"max_ranking_length": 16}, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["max_ranking_length"] == 16
    assert ranker.rank(ranker.ids[:16]).status_code == 201
    # Lowering the server's hard maximum caps projects that were set higher before.
    settings.PREFLAB_MAX_RANKING_LENGTH = 4
    other = Ranker(5)
    other.project.max_ranking_length = 16
    other.project.save()
    refused = other.rank(other.ids)
    assert refused.status_code == 400
    assert "at most 4" in refused.json()["error"]["fields"]["order"][0]


# --- pairing at import -----------------------------------------------------------------------------------


def _responses_row(n: int, prompt: str = "Which answer is best?") -> bytes:
    return (
        json.dumps({"prompt": prompt, "responses": [f"answer number {i}" for i in range(n)]}).encode() + b"\n"
    )


@pytest.mark.parametrize("pairing", ["random_k", "all_pairs", "adjacent"])
def test_row_with_6000_responses_is_refused_on_its_line(importer, pairing):
    """53 KB, one row: random_k used to list all 18 million pairs before sampling three (1.8 GB)."""
    data = _responses_row(2) + _responses_row(6000, "Another prompt")
    error = _hostile(importer, data, "wide.jsonl", pairing=pairing)
    assert error["message"] == (
        "line 2: responses: 6000 responses; at most 64 per record (PREFLAB_MAX_RESPONSES_PER_RECORD)"
    )
    assert error["fields"] == {"responses": [error["message"]]}


def test_prompt_whose_candidates_make_too_many_all_pairs_tasks_is_refused(importer):
    """500 responses of one prompt (spread over rows, each under the per-record cap) used to make 124,750
    tasks; all_pairs is refused past PREFLAB_MAX_TASKS_PER_PROMPT, naming the prompt's first line."""
    rows = [_responses_row(2, "A different prompt")]
    rows += [
        json.dumps({"prompt": "Same prompt", "responses": [f"answer {r}-{i}" for i in range(50)]}).encode()
        + b"\n"
        for r in range(10)
    ]
    error = _hostile(importer, b"".join(rows), "many.jsonl", pairing="all_pairs")
    assert error["message"].startswith(
        "line 2: responses: 500 candidates for this prompt make 124750 all_pairs tasks; at most 500 per "
        "prompt (PREFLAB_MAX_TASKS_PER_PROMPT)"
    )
    # random_k and adjacent stay linear: the same file imports.
    response = importer.upload(b"".join(rows), "many.jsonl", pairing="random_k", pairs_per_prompt=3)
    assert response.status_code == 201, response.content
    assert response.json()["tasks_created"] == 1 + 3


def test_pairs_per_prompt_over_the_task_cap_is_refused(importer, settings):
    settings.PREFLAB_MAX_TASKS_PER_PROMPT = 10
    error = _hostile(importer, _responses_row(8), "k.jsonl", pairing="random_k", pairs_per_prompt=11)
    assert error["fields"] == {"pairs_per_prompt": [error["message"]]}
    assert "at most 10 tasks per prompt (PREFLAB_MAX_TASKS_PER_PROMPT); got 11" in error["message"]


def test_records_past_the_record_cap_are_refused(importer, settings):
    settings.PREFLAB_MAX_IMPORT_RECORDS = 5
    data = b"".join(_responses_row(2, f"prompt {i}") for i in range(6))
    error = _hostile(importer, data, "rows.jsonl")
    assert error["message"].startswith("line 6: source: more than 5 records (PREFLAB_MAX_IMPORT_RECORDS)")
    assert importer.upload(data, "rows.jsonl", limit=5).status_code == 201


# --- JSON arrays -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "element",
    [b"{}", b"1", b"[]", b'{"prompt": "p", "responses": []}'],
    ids=["object", "number", "list", "bad"],
)
def test_small_gzip_of_a_huge_json_array_is_refused_without_materialising_it(importer, element):
    """96 KB of gzip holding 99 MB of ``[{},{},...]`` (under the size cap) used to take 1.25 GB of memory
    before its 400. Parsed incrementally, the first element is refused on its own."""
    inflated = b"[" + (element + b",") * (99_000_000 // (len(element) + 1)) + element + b"]"
    bomb = gzip.compress(inflated, compresslevel=9)
    assert len(bomb) < 400_000 < 99_000_000 <= len(inflated) + 2 * len(element)
    error = _hostile(importer, bomb, "array.json.gz")
    assert error["message"].startswith("item 1: "), error["message"]


def test_json_array_with_a_syntax_error_deep_in_it_names_the_line(importer):
    good = json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"})
    data = ("[\n" + ",\n".join([good] * 3) + ",\n{oops}\n]").encode()
    error = _hostile(importer, data, "broken.json")
    assert error["message"].startswith("line 5: invalid JSON"), error["message"]


# --- NaN and Infinity ------------------------------------------------------------------------------------

GOOD_PAIR = {"prompt": "Is water wet?", "chosen": "Yes.", "rejected": "No."}


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (
            '{"prompt": "p", "responses": [{"text": "a", "generation_params": {"temperature": NaN}}, "b"]}',
            "responses[0]",
        ),
        ('{"prompt": "p", "responses": [{"text": "a", "params": {"top_p": Infinity}}, "b"]}', "responses[0]"),
        ('{"prompt": "p", "responses": ["a", "b"], "metadata": {"score": -Infinity}}', "metadata"),
        ('{"prompt": "p", "responses": ["a", "b"], "metadata": {"score": 1e999}}', "metadata"),
    ],
    ids=["nan-params", "infinity-params", "minus-infinity-metadata", "overflow-metadata"],
)
def test_nan_or_infinity_in_a_jsonl_row_is_400_on_its_line(importer, line, field):
    """PostgreSQL's JSON has no NaN/Infinity: the import used to end in a 500 from the database."""
    data = json.dumps({"prompt": "q", "responses": ["x", "y"]}).encode() + b"\n" + line.encode() + b"\n"
    error = _hostile(importer, data, "nan.jsonl")
    assert error["message"].startswith(f"line 2: {field}: "), error["message"]
    assert "NaN and Infinity cannot be stored" in error["message"]
    assert error["fields"] == {field: [error["message"]]}


def test_nan_in_a_csv_json_cell_is_400_on_its_row(importer):
    data = b'prompt,chosen,rejected,metadata\nq1,good,bad,{}\nq2,good,bad,"{""x"": NaN}"\n'
    error = _hostile(importer, data, "nan.csv")
    assert error["message"].startswith("row 2 (line 3): metadata: "), error["message"]


def test_nan_in_a_parquet_float_is_400_on_its_row(importer, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {
            "prompt": "p1",
            "responses": [{"text": "a", "generation_params": {"temperature": 0.7}}, {"text": "b"}],
        },
        {"prompt": "p2", "responses": [{"text": "a", "generation_params": {"temperature": float("nan")}}]},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "nan.parquet")
    error = _hostile(importer, (tmp_path / "nan.parquet").read_bytes(), "nan.parquet")
    assert error["message"].startswith("row 2: responses[0]: "), error["message"]


def test_nan_in_a_json_array_is_400_on_its_line(importer):
    data = (
        b'[\n{"prompt": "p", "responses": ["a", "b"]},\n{"prompt": "q", "responses": ["a", "b"], "x": NaN}\n]'
    )
    error = _hostile(importer, data, "nan.json")
    assert error["message"].startswith("line 3: invalid JSON"), error["message"]


# --- training configs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "config", "message"),
    [
        (
            "ppo",
            {"algorithm": {"steps": 10**12}},
            "algorithm.steps: 1000000000000 is over the limit of 100000",
        ),
        (
            "ppo",
            {"algorithm": {"batch_size": 10**7}},
            "algorithm.batch_size: 10000000 is over the limit of 1024",
        ),
        ("ppo", {"algorithm": {"num_sample_responses": 10**6}}, "PREFLAB_MAX_SAMPLES_PER_PROMPT"),
        ("grpo", {"algorithm": {"max_completion_length": 10**9}}, "PREFLAB_MAX_SEQUENCE_TOKENS"),
        ("sft", {"algorithm": {"source": "demonstrations", "max_steps": 10**9}}, "algorithm.max_steps"),
        ("ppo", {"prompts": {"max_prompts": 10**9}}, "prompts.max_prompts"),
        ("ppo", {"battle": {"held_out": 10**9}}, "battle.held_out"),
        ("ppo", {"battle": {"overlap_k": 10**6}}, "PREFLAB_MAX_BATTLE_OVERLAP"),
        (
            "ppo",
            {"prompts": {"source": "list", "items": ["hi"] * 11, "max_prompts": 5}},
            "prompts.items: 11 entries is over the limit of 10",
        ),
    ],
)
def test_policy_run_config_over_a_work_limit_is_400(db, settings, kind, config, message):
    """A few bytes of config used to queue a run of 10^12 steps or a 10^7 batch (a worker OOM)."""
    from training.models import TrainingRun

    if "items" in config.get("prompts", {}):
        settings.PREFLAB_MAX_POLICY_PROMPTS = 10  # so the list stays small; max_prompts=5 is within it
    engineer = make_user(Role.ENGINEER)
    project = make_project(members=[(engineer, Role.ENGINEER)])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(engineer, [TokenScope.TRAIN])}")
    body = {"kind": kind, "base_model": "tiny", "project_id": project.pk, "config": config}
    response = client.post("/api/v1/policy-runs/", body, format="json")
    assert response.status_code == 400, response.content[:500]
    assert message in " ".join(response.json()["error"]["fields"]["config"])
    assert TrainingRun.objects.count() == 0


def test_reward_run_config_over_a_work_limit_is_refused(db, tmp_path):
    from django.core.exceptions import ValidationError

    from training.models import DatasetSnapshot, JobStatus, TrainingRun
    from training.rewardmodels.services import reward_run_create

    snapshot = DatasetSnapshot.objects.create(
        name="s", version=1, status=JobStatus.SUCCEEDED, artifact_dir=str(tmp_path), spec={"projects": []}
    )
    with pytest.raises(ValidationError) as info:
        reward_run_create(snapshot=snapshot, base_model="tiny", config={"per_device_train_batch_size": 10**8})
    assert (
        "config.per_device_train_batch_size: 100000000 is over the limit of 1024 (PREFLAB_MAX_BATCH_SIZE)"
        in (info.value.message_dict["config"][0])
    )
    assert TrainingRun.objects.count() == 0

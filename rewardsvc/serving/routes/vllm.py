"""vLLM's pooling protocols. ``POST /classify`` and ``POST /pooling`` (task ``classify``, the only pooling
task a reward model answers here) with ``{"input", "model"?, "use_activation"?}``: each input is one full
text. ``POST /score`` (and ``/v1/score``) with ``{"text_1", "text_2", "model"?, "use_activation"?}``: vLLM's
pair-scoring API, where ``text_1`` is the prompt (one for all, or one per ``text_2``) and ``text_2`` the
responses, kept as two segments, so it scores exactly as the native route does. Values are sigmoid(reward),
or the raw reward with ``use_activation`` false; one class: the reward. For an ensemble RM each row also carries
``uncertainty``: the spread of the members' raw rewards (logit units, never passed through the sigmoid).
vLLM's own response models allow extra fields, and clients read ``probs`` / ``data`` / ``score``."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rewardsvc.scoring import sigmoid
from rewardsvc.serving.errors import ApiError
from rewardsvc.serving.models import LoadedModel
from rewardsvc.serving.routes.common import check_model, read_json, timed, uncertainty_of
from rewardsvc.serving.service import RewardService


@dataclass
class ClassifyRequest:
    inputs: list[str]
    use_activation: bool
    model: Any


@dataclass
class Classified:
    model: LoadedModel
    values: list[float]
    tokens: int
    uncertainty: list[float] | None = None
    """An ensemble's per-input spread of member rewards (raw units); None for a single model."""

    def row_extra(self, i: int) -> dict:
        return {} if self.uncertainty is None else {"uncertainty": self.uncertainty[i]}


def parse(data: dict, service: RewardService) -> ClassifyRequest:
    inputs = data.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not all(isinstance(x, str) for x in inputs):
        raise ApiError(
            400, "invalid", "'input' must be a string or a list of strings.", fields={"input": ["Invalid."]}
        )
    service.check_count(len(inputs))
    for i, text in enumerate(inputs):
        service.check_text(text, f"input[{i}]")
    return ClassifyRequest(inputs, _use_activation(data), data.get("model"))


def _use_activation(data: dict) -> bool:
    use_activation = data.get("use_activation")
    if use_activation is None:
        use_activation = data.get("activation", True)
    return bool(use_activation)


async def classify(service: RewardService, principal, req: ClassifyRequest) -> Classified:
    """Charge, then score each input as one text; sigmoid unless ``use_activation`` is false."""
    await service.charge(principal, len(req.inputs))
    with service.models.acquire() as model:
        check_model(model, req.model)
        rewards, encoded = await service.score(
            model, lambda s: [s.encode_text(t) for t in req.inputs], sum(len(t) for t in req.inputs)
        )
    values = [sigmoid(r) if req.use_activation else r for r in rewards]
    return Classified(model, values, sum(len(e) for e in encoded), uncertainty_of(model, rewards))


@dataclass
class PairScoreRequest:
    prompts: list[str]
    responses: list[str]
    use_activation: bool
    model: Any


#: vLLM's ScoreRequest spellings of the two sides (text_1/text_2 first, the others as vLLM accepts them).
PAIR_FIELDS = (("text_1", "text_2"), ("queries", "documents"), ("queries", "items"), ("data_1", "data_2"))


def _texts(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(x, str) for x in value):
        return value
    raise ApiError(
        400,
        "invalid",
        f"'{name}' must be a string or a non-empty list of strings.",
        fields={name: ["A string or a non-empty list of strings."]},
    )


def parse_pairs(data: dict, service: RewardService) -> PairScoreRequest:
    """vLLM's input lengths: 1:1, 1:N (one prompt for every response) or N:N."""
    first, second = next(((a, b) for a, b in PAIR_FIELDS if a in data and b in data), PAIR_FIELDS[0])
    prompts = _texts(data.get(first), first)
    responses = _texts(data.get(second), second)
    if len(prompts) > 1 and len(prompts) != len(responses):
        message = f"'{first}' has {len(prompts)} items and '{second}' {len(responses)}: send 1:1, 1:N or N:N."
        raise ApiError(400, "invalid", message, fields={first: [message]})
    service.check_count(len(responses))
    prompts = prompts * len(responses) if len(prompts) == 1 else prompts
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        service.check_text(p, f"{first}[{i}]")
        service.check_text(r, f"{second}[{i}]")
    return PairScoreRequest(prompts, responses, _use_activation(data), data.get("model"))


def envelope(prefix: str, result: Classified, data: list) -> dict:
    return {
        "id": f"{prefix}-{uuid.uuid4().hex}",
        "object": "list",
        "created": int(time.time()),
        "model": result.model.model_id,
        "data": data,
        "usage": {
            "prompt_tokens": result.tokens,
            "total_tokens": result.tokens,
            "completion_tokens": 0,
            "prompt_tokens_details": None,
        },
    }


@timed("classify")
async def classify_route(request: Request, service: RewardService) -> Response:
    principal = await service.authenticate(request)
    req = parse(await read_json(request, service), service)
    result = await classify(service, principal, req)
    label = result.model.scorer.labels[0]
    rows = [
        {"index": i, "label": label, "probs": [value], "num_classes": 1, **result.row_extra(i)}
        for i, value in enumerate(result.values)
    ]
    service.metrics.items.labels("classify").inc(len(rows))
    return JSONResponse(envelope("classify", result, rows))


@timed("pooling")
async def pooling_route(request: Request, service: RewardService) -> Response:
    principal = await service.authenticate(request)
    data = await read_json(request, service)
    task = data.get("task", "classify")
    if task != "classify":
        raise ApiError(400, "unsupported_task", f"Only task 'classify' is served, not {task!r}.")
    result = await classify(service, principal, parse(data, service))
    rows = [
        {"index": i, "object": "pooling", "data": [value], **result.row_extra(i)}
        for i, value in enumerate(result.values)
    ]
    service.metrics.items.labels("pooling").inc(len(rows))
    return JSONResponse(envelope("pool", result, rows))


@timed("vllm_score")
async def score_pairs_route(request: Request, service: RewardService) -> Response:
    principal = await service.authenticate(request)
    req = parse_pairs(await read_json(request, service), service)
    await service.charge(principal, len(req.responses))
    with service.models.acquire() as model:
        check_model(model, req.model)
        chars = sum(map(len, req.prompts)) + sum(map(len, req.responses))
        rewards, encoded = await service.score(
            model, lambda s: [s.encode(p, r) for p, r in zip(req.prompts, req.responses, strict=True)], chars
        )
        service.sample(model, req.prompts, req.responses, rewards)
    values = [sigmoid(r) if req.use_activation else r for r in rewards]
    result = Classified(model, values, sum(len(e) for e in encoded), uncertainty_of(model, rewards))
    rows = [
        {"index": i, "object": "score", "score": value, **result.row_extra(i)}
        for i, value in enumerate(values)
    ]
    service.metrics.items.labels("vllm_score").inc(len(rows))
    return JSONResponse(envelope("score", result, rows))

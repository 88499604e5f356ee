"""vLLM's pooling protocol: ``POST /classify`` and ``POST /pooling`` (task ``classify``, the only pooling
task a reward model answers here) with ``{"input", "model"?, "use_activation"?}``. ``probs`` holds
sigmoid(reward), or the raw reward with ``use_activation`` false; one class: the reward."""

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
from rewardsvc.serving.routes.common import check_model, read_json, timed
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
    use_activation = data.get("use_activation")
    if use_activation is None:
        use_activation = data.get("activation", True)
    return ClassifyRequest(inputs, use_activation, data.get("model"))


async def classify(service: RewardService, principal, req: ClassifyRequest) -> Classified:
    """Charge, then score each input as one text; sigmoid unless ``use_activation`` is false."""
    await service.charge(principal, len(req.inputs))
    with service.models.acquire() as model:
        check_model(model, req.model)
        rewards, encoded = await service.score(
            model, lambda s: [s.encode_text(t) for t in req.inputs], sum(len(t) for t in req.inputs)
        )
    values = [sigmoid(r) if req.use_activation else r for r in rewards]
    return Classified(model, values, sum(len(e) for e in encoded))


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
        {"index": i, "label": label, "probs": [value], "num_classes": 1}
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
    rows = [{"index": i, "object": "pooling", "data": [value]} for i, value in enumerate(result.values)]
    service.metrics.items.labels("pooling").inc(len(rows))
    return JSONResponse(envelope("pool", result, rows))

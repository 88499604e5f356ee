"""PrefLab's native protocol: ``POST /v1/reward/score`` with ``{"items": [{"prompt", "response"}],
"normalize"?, "model"?}`` -> ``{"model", "model_version", "rewards", "normalized", "truncated",
"raw_rewards"?, "uncertainty"?}``. A prompt is a string or a list of chat messages. ``uncertainty`` (an
ensemble RM only) is the spread of its members' rewards per item, in the units of ``rewards``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rewardsvc.scoring import EncodedInput
from rewardsvc.serving.errors import ApiError
from rewardsvc.serving.models import LoadedModel
from rewardsvc.serving.routes.common import check_model, read_json, timed, uncertainty_of, want_normalize
from rewardsvc.serving.service import RewardService


@dataclass
class ScoreRequest:
    prompts: list
    responses: list[str]
    normalize: bool
    model: Any

    @property
    def chars(self) -> int:
        return sum(len(r) for r in self.responses) + sum(
            len(p) if isinstance(p, str) else 0 for p in self.prompts
        )


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) > 0
        and all(
            isinstance(m, dict)
            and isinstance(m.get("content"), str)
            and isinstance(m.get("role"), str)
            and m["role"]
            for m in value
        )
    )


def parse(data: dict, service: RewardService) -> ScoreRequest:
    items = data.get("items")
    if not isinstance(items, list):
        raise ApiError(
            400, "invalid", "'items' must be a list.", fields={"items": ["This field is required."]}
        )
    service.check_count(len(items))
    prompts, responses, bad = [], [], {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            bad[f"items[{i}]"] = ["Must be an object with 'prompt' and 'response'."]
            continue
        prompt, response = item.get("prompt", ""), item.get("response")
        if not isinstance(response, str):
            bad[f"items[{i}].response"] = ["Must be a string."]
        if not (isinstance(prompt, str) or _is_messages(prompt)):
            bad[f"items[{i}].prompt"] = ["Must be a string or a list of {role, content} messages."]
        if bad:
            continue
        service.check_text(response, f"items[{i}].response")
        service.check_text(
            prompt if isinstance(prompt, str) else "".join(m["content"] for m in prompt), f"items[{i}].prompt"
        )
        prompts.append(prompt)
        responses.append(response)
    if bad:
        raise ApiError(400, "invalid", next(iter(bad)) + ": " + next(iter(bad.values()))[0], fields=bad)
    return ScoreRequest(prompts, responses, bool(data.get("normalize", False)), data.get("model"))


def envelope(
    model: LoadedModel, req: ScoreRequest, rewards: list[float], encoded: list[EncodedInput]
) -> dict:
    body: dict[str, Any] = {
        "model": model.model_id,
        "model_version": model.version,
        "rewards": model.scorer.normalize(rewards) if req.normalize else rewards,
        "normalized": req.normalize,
        "truncated": [e.truncated for e in encoded],
    }
    if req.normalize:
        body["raw_rewards"] = list(rewards)
    uncertainty = uncertainty_of(model, rewards, normalize=req.normalize)
    if uncertainty is not None:
        body["uncertainty"] = uncertainty
    return body


@timed("score")
async def score_route(request: Request, service: RewardService) -> Response:
    principal = await service.authenticate(request)
    req = parse(await read_json(request, service), service)
    await service.charge(principal, len(req.prompts))
    with service.models.acquire() as model:
        check_model(model, req.model)
        want_normalize(model, req.normalize)
        rewards, encoded = await service.score(
            model,
            lambda s: [s.encode(p, r) for p, r in zip(req.prompts, req.responses, strict=True)],
            req.chars,
        )
        service.metrics.items.labels("score").inc(len(rewards))
        service.sample(model, req.prompts, req.responses, rewards)
        return JSONResponse(envelope(model, req, rewards, encoded))

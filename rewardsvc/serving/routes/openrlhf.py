"""OpenRLHF's remote reward model: ``POST /get_reward`` with ``{"query", "prompts"?, "labels"?}`` ->
``{"rewards", "scores", "extra_logs"}``. ``query`` holds full texts (prompt + response); add
``?normalize=1`` to the URL for normalised rewards. An ensemble RM adds ``uncertainty`` (its members' spread
per query) at the top and in ``extra_logs``, which OpenRLHF logs per sample; OpenRLHF reads only
``rewards`` (``scores``, ``extra_logs`` in newer versions), so the field costs it nothing."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rewardsvc.scoring import EncodedInput, RewardScorer
from rewardsvc.serving.errors import ApiError
from rewardsvc.serving.models import LoadedModel
from rewardsvc.serving.routes.common import read_json, timed, uncertainty_of, want_normalize
from rewardsvc.serving.service import RewardService


@dataclass
class RewardRequest:
    queries: list[str]
    prompts: list[str]
    normalize: bool

    def pairs(self) -> list[tuple[str, str]]:
        """(prompt, response) per query: split at its prompt when the query starts with it, else ("", query)."""
        return [
            _split_query(q, self.prompts[i] if self.prompts else None) for i, q in enumerate(self.queries)
        ]


def _split_query(query: str, prompt: str | None) -> tuple[str, str]:
    if prompt and query.startswith(prompt):
        return prompt, query[len(prompt) :]
    return "", query


def parse(data: dict, request: Request, service: RewardService) -> RewardRequest:
    queries = data.get("query")
    if isinstance(queries, str):
        queries = [queries]
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        raise ApiError(
            400, "invalid", "'query' must be a list of strings.", fields={"query": ["A list of strings."]}
        )
    prompts = data.get("prompts") or []
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise ApiError(
            400, "invalid", "'prompts' must be a list of strings.", fields={"prompts": ["A list of strings."]}
        )
    if prompts and len(prompts) != len(queries):
        message = (
            f"'prompts' has {len(prompts)} items but 'query' has {len(queries)}; send one prompt per query."
        )
        raise ApiError(400, "invalid", message, fields={"prompts": [message]})
    service.check_count(len(queries))
    for i, q in enumerate(queries):
        service.check_text(q, f"query[{i}]")
    normalize = request.query_params.get("normalize", "").lower() in ("1", "true", "yes")
    return RewardRequest(queries, prompts, normalize)


def envelope(
    model: LoadedModel, req: RewardRequest, rewards: list[float], encoded: list[EncodedInput]
) -> dict:
    out = model.scorer.normalize(rewards) if req.normalize else list(rewards)
    body = {
        "rewards": out,
        "scores": out,
        "extra_logs": {"truncated": [float(e.truncated) for e in encoded]},
    }
    uncertainty = uncertainty_of(model, rewards, normalize=req.normalize)
    if uncertainty is not None:
        body["uncertainty"] = body["extra_logs"]["uncertainty"] = uncertainty
    return body


@timed("get_reward")
async def get_reward_route(request: Request, service: RewardService) -> Response:
    principal = await service.authenticate(request)
    req = parse(await read_json(request, service), request, service)
    await service.charge(principal, len(req.queries))
    with service.models.acquire() as model:
        want_normalize(model, req.normalize)
        pairs = req.pairs()

        def encode(s: RewardScorer) -> list[EncodedInput]:
            # With its prompt, a query is split and encoded as training did (prompt ids + response ids);
            # without one, the full text is scored.
            return [s.encode(p, r) if p else s.encode_text(r) for p, r in pairs]

        rewards, encoded = await service.score(model, encode, sum(len(q) for q in req.queries))
        service.metrics.items.labels("get_reward").inc(len(rewards))
        body = envelope(model, req, rewards, encoded)
        service.sample(model, [p for p, _ in pairs], [r for _, r in pairs], rewards)
    return JSONResponse(body)

"""What every route shares: the request timer and error handler, body reading, and the model checks."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from rewardsvc.serving.errors import ApiError
from rewardsvc.serving.models import LoadedModel
from rewardsvc.serving.service import RewardService


def service_of(request: Request) -> RewardService:
    return request.app.state.service


def timed(route: str, *, scoring: bool = True):
    """Wrap ``fn(request, service)``: count it as in flight (scoring routes), answer an ``ApiError`` as its
    envelope, and record the request count and latency under ``route``."""

    def wrap(fn):
        async def endpoint(request: Request) -> Response:
            service = service_of(request)
            started = time.perf_counter()
            service.scoring_in_flight += scoring
            try:
                response = await fn(request, service)
            except ApiError as exc:
                response = exc.response()
            finally:
                service.scoring_in_flight -= scoring
            service.metrics.requests.labels(route, str(response.status_code)).inc()
            service.metrics.latency.labels(route).observe(time.perf_counter() - started)
            return response

        endpoint.__name__ = fn.__name__
        return endpoint

    return wrap


async def read_json(request: Request, service: RewardService) -> dict:
    limit = service.config.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"Request body over {limit} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise ApiError(413, "body_too_large", f"Request body over {limit} bytes.")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise ApiError(400, "parse_error", f"Body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "invalid", "Body must be a JSON object.")
    return data


def check_model(model: LoadedModel, requested: Any, field_name: str = "model") -> None:
    """A request naming a model must name the one served (its id, name or version)."""
    if requested in (None, ""):
        return
    names = {model.model_id, model.scorer.name}
    if model.version is not None:
        names |= {str(model.version), f"v{model.version}"}
    if str(requested) not in names:
        raise ApiError(
            404,
            "model_not_loaded",
            f"Model {requested!r} is not served here; serving {model.model_id} (version {model.version}).",
            fields={field_name: [f"one of {sorted(names)}"]},
        )


def uncertainty_of(model: LoadedModel, rewards, *, normalize: bool = False) -> list[float] | None:
    """An ensemble's per-input spread of member rewards (``RewardList.uncertainty``), in normalised units
    when the rewards are normalised; None for a single model, whose answers carry no ``uncertainty``."""
    spread = getattr(rewards, "uncertainty", None)
    if spread is None:
        return None
    return [u / model.scorer.reward_std for u in spread] if normalize else list(spread)


def want_normalize(model: LoadedModel, normalize: bool) -> None:
    if normalize and not model.scorer.can_normalize:
        raise ApiError(400, "cannot_normalize", "This reward model has no stored reward mean/std.")

"""Operating the server: ``GET /health`` (no token), ``GET /metrics`` (Prometheus), ``GET /v1/models`` (what
is loaded, OpenAI-style) and ``POST /v1/admin/reload`` (load a newly promoted version now)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rewardsvc.serving.errors import ApiError
from rewardsvc.serving.routes.common import service_of, timed
from rewardsvc.serving.service import RewardService


async def health_route(request: Request) -> Response:
    service = service_of(request)
    model = service.models.current
    if model is None:
        return JSONResponse({"status": "loading", "error": service.load_error}, status_code=503)
    return JSONResponse({"status": "ok", "model": model.model_id, "model_version": model.version})


@timed("models", scoring=False)
async def models_route(request: Request, service: RewardService) -> Response:
    await service.authenticate(request)
    rows = []
    for model in [service.models.current, *service.models.draining]:
        if model is None:
            continue
        rows.append(
            {
                "id": model.model_id,
                "object": "model",
                "created": int(model.loaded_at),
                "owned_by": "preflab",
                "version": model.version,
                "reward_model_id": model.reward_model_pk,
                "max_model_len": model.scorer.max_length,
                "ensemble_size": model.scorer.ensemble_size,
                "serving": model is service.models.current,
                "normalization": {"mean": model.scorer.reward_mean, "std": model.scorer.reward_std},
            }
        )
    return JSONResponse({"object": "list", "data": rows})


@timed("reload", scoring=False)
async def reload_route(request: Request, service: RewardService) -> Response:
    principal = await service.authenticate(request)
    if not principal.can_reload:
        where = f" of project {service.config.project_id}" if service.config.project_id is not None else ""
        raise ApiError(403, "permission_denied", f"Reloading needs an engineer or admin{where}.")
    swapped = await service.reload()
    model = service.models.current
    return JSONResponse({"swapped": swapped, "model": model.model_id, "model_version": model.version})


async def metrics_route(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    service = service_of(request)
    model = service.models.current
    if model is not None:
        service.metrics.queue_depth.set(model.batcher.queue_depth)
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

"""The reward server's ASGI app factory: routes (also under ``/t/<token>/`` for clients that cannot send
headers), the model loaded at startup (lifespan), torch thread limits, token redaction in access logs."""

from __future__ import annotations

import contextlib
import logging
import os
import threading

from starlette.applications import Starlette
from starlette.routing import Mount, Route

from rewardsvc.serving.auth import RedactTokenFilter
from rewardsvc.serving.config import ServerConfig, setup_django
from rewardsvc.serving.routes.native import score_route
from rewardsvc.serving.routes.openrlhf import get_reward_route
from rewardsvc.serving.routes.ops import health_route, metrics_route, models_route, reload_route
from rewardsvc.serving.routes.vllm import classify_route, pooling_route, score_pairs_route
from rewardsvc.serving.service import RewardService

SCORING_ROUTES = [
    Route("/v1/reward/score", score_route, methods=["POST"]),
    Route("/get_reward", get_reward_route, methods=["POST"]),
    Route("/classify", classify_route, methods=["POST"]),
    Route("/pooling", pooling_route, methods=["POST"]),
    Route("/score", score_pairs_route, methods=["POST"]),
    Route("/v1/score", score_pairs_route, methods=["POST"]),
    Route("/v1/models", models_route, methods=["GET"]),
    Route("/v1/admin/reload", reload_route, methods=["POST"]),
]


def create_app(config: ServerConfig | None = None) -> Starlette:
    """Build the ASGI app. The model loads at startup (lifespan), before the server accepts requests."""
    setup_django()
    config = config or ServerConfig.from_env()
    if config.project_id is None and not config.model_dir:
        raise RuntimeError(
            "Set PREFLAB_RM_PROJECT (or PREFLAB_RM_MODEL_DIR) to say which reward model to serve."
        )
    torch_threads = config.num_threads or os.cpu_count() or 1
    import torch

    torch.set_num_threads(torch_threads)
    with contextlib.suppress(RuntimeError):  # only settable before any parallel work
        torch.set_num_interop_threads(1)
    logging.getLogger("uvicorn.access").addFilter(RedactTokenFilter())
    service = RewardService(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = Starlette(
        routes=[
            Route("/health", health_route, methods=["GET"]),
            Route("/metrics", metrics_route, methods=["GET"]),
            *SCORING_ROUTES,
            Mount("/t/{token}", routes=SCORING_ROUTES),
        ],
        lifespan=lifespan,
    )
    app.state.service = service
    return app


class _LazyApp:
    """``uvicorn rewardsvc.server:app``: the app is built from the environment on the first ASGI call, so
    importing this module loads nothing."""

    def __init__(self) -> None:
        self._app: Starlette | None = None
        self._failed: BaseException | None = None
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            with self._lock:
                if self._failed is not None:
                    # Django's app registry cannot be set up twice after a failure ("populate() isn't
                    # reentrant"): every later call names the first cause instead.
                    raise RuntimeError(
                        f"the reward server failed to start: {self._failed!r}"
                    ) from self._failed
                if self._app is None:
                    try:
                        self._app = create_app()
                    except BaseException as exc:
                        # uvicorn's default lifespan mode swallows an error of the first (lifespan) call
                        # ("ASGI 'lifespan' protocol appears unsupported"): log it where the operator looks.
                        self._failed = exc
                        logging.getLogger("rewardsvc").exception("the reward server failed to start")
                        raise
        await self._app(scope, receive, send)


app = _LazyApp()

"""The reward server: an ASGI (Starlette) app that loads a reward model once and scores with dynamic
micro-batching across concurrent requests.

Run: ``uvicorn rewardsvc.server:app`` (or ``manage.py serve_rewards``) with ``PREFLAB_RM_PROJECT`` (serve
the project's active RM, hot-swapping on promotion), optionally ``PREFLAB_RM_VERSION`` (pin one), or
``PREFLAB_RM_MODEL_DIR`` (a bare model dir, for benchmarks). Several replicas can sit behind any load
balancer: each is stateless apart from its in-memory rate-limit buckets and token cache.

Routes (also under ``/t/<token>/`` for clients that cannot send headers, e.g. OpenRLHF's remote RM):
``POST /v1/reward/score`` (native), ``POST /get_reward`` (OpenRLHF), ``POST /classify`` and
``POST /pooling`` (vLLM), ``GET /health``, ``GET /v1/models``, ``GET /metrics``, ``POST /v1/admin/reload``.
See docs/reward-serving.md.

The code lives in ``rewardsvc.serving`` (one module per subject, one per wire protocol); this module is
the stable entry point that uvicorn, ``serve_rewards``, Docker and the docs name.
"""

from __future__ import annotations

from rewardsvc.serving.app import app, create_app
from rewardsvc.serving.config import ServerConfig

__all__ = ["ServerConfig", "create_app", "app"]

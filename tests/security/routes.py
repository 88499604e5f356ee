"""Every named route of the site, enumerated from the URL resolver and made concrete with the ids of a
security world. Unlike ``test_route_matrix._concrete`` (which skips regex routes), this reverses each route
by name, so the DRF router's regex routes (``/api/v1/projects/{pk}/`` ...) are covered too."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.security.test_route_matrix import PUBLIC, PUBLIC_PREFIXES

# DRF router routes name their object ``pk``; which object depends on the route's basename.
_PK_BY_BASENAME = {
    "project": "project",
    "prompt": "prompt",
    "candidate": "candidate",
    "task": "task",
    "judgment": "judgment",
    "token": "token",
}


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name" for namespaced pages
    path: str
    view: object  # the view class (DRF) or function
    is_api: bool

    @property
    def is_public(self) -> bool:
        return self.path in PUBLIC or self.path.startswith(PUBLIC_PREFIXES)


def _walk(patterns, namespace: str | None = None, params: tuple[str, ...] = ()):
    for p in patterns:
        names = tuple(p.pattern.regex.groupindex)
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, p.namespace or namespace, params + names)
        elif isinstance(p, URLPattern) and p.name:
            full = f"{namespace}:{p.name}" if namespace else p.name
            yield full, params + names, p.callback


def site_routes(ids: dict[str, object]) -> list[Route]:
    """Every named route (public ones included; filter with ``Route.is_public``), each reversed with the
    ids in ``ids`` (URL parameter name -> value; ``pk`` is chosen by the DRF basename)."""
    routes: dict[str, Route] = {}
    for name, params, callback in _walk(get_resolver().url_patterns):
        if name.startswith("admin:"):
            continue
        kwargs = {}
        for param in params:
            if param == "pk":
                key = _PK_BY_BASENAME.get(name.split("-")[0], "project") + "_pk"
                kwargs["pk"] = ids[key]
            elif param == "run_id" and "policy" in name:
                kwargs[param] = ids["policy_run_id"]
            elif param != "format":
                kwargs[param] = ids[param]
        if "format" in params:
            continue  # DRF format-suffix twins are covered by their plain routes
        path = reverse(name, kwargs=kwargs)
        view = getattr(callback, "cls", None) or getattr(callback, "view_class", None) or callback
        routes.setdefault(path, Route(name, path, view, path.startswith("/api/")))
    return list(routes.values())


def route_ids(world) -> dict[str, object]:
    """URL kwargs for a security ``World``, including the ``<basename>_pk`` keys router routes need."""
    ids = dict(world.ids())
    ids.update(
        project_pk=world.project.pk,
        prompt_pk=world.task.prompt_id,
        candidate_pk=world.task.candidate_a_id,
        task_pk=world.task.pk,
        judgment_pk=world.judgment.pk,
        token_pk=world.annotator_token_id,
    )
    # Lead pages' own objects: ids nobody holds (the routes answer 404 to those who may open them).
    ids.update(
        import_id=999_999,
        invite_id=999_999,
        token="inv_not-a-real-invite",
        scoring_job_id=999_999,
    )
    return ids

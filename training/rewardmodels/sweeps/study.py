"""The Optuna side of a sweep: its RDB storage on the project's own database (so every worker that reaches
the database shares the study: no scheduler of our own), the study of a sweep, and the search space as
Optuna distributions.

The storage URL is built from Django's ``default`` database (PostgreSQL through psycopg 3, or the embedded
SQLite file); Optuna keeps its tables (``studies``, ``trials``, ...) beside PrefLab's and creates them on
first use. Connections are not pooled (``NullPool``): a trial asks and tells a few times, and an idle pool
would hold connections the database (and a test database being dropped) needs back.
"""

from __future__ import annotations

from typing import Any

from django.db import connections

from training.rewardmodels.sweeps.config import PARAMETER_KINDS, ParamRange, SweepConfig


def storage_url(alias: str = "default") -> str:
    """The SQLAlchemy URL of Django's database ``alias`` (the test database under the test runner)."""
    from sqlalchemy.engine import URL

    db = connections[alias].settings_dict
    engine = db["ENGINE"]
    if engine.endswith("sqlite3"):
        name = str(db["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            raise ValueError(
                "an in-memory SQLite database cannot hold an Optuna study; use a file or PostgreSQL"
            )
        return f"sqlite:///{name}"
    if engine.endswith("postgresql"):
        url = URL.create(
            "postgresql+psycopg",
            username=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            host=db.get("HOST") or None,
            port=int(db["PORT"]) if db.get("PORT") else None,
            database=db["NAME"],
        )
        return url.render_as_string(hide_password=False)
    raise ValueError(f"no Optuna storage for the database engine {engine}")


def storage():
    """Optuna's RDB storage on the project's database."""
    import optuna
    from sqlalchemy.pool import NullPool

    return optuna.storages.RDBStorage(url=storage_url(), engine_kwargs={"poolclass": NullPool})


def direction(cfg: SweepConfig) -> str:
    return "maximize" if cfg.objective == "accuracy" else "minimize"


def sampler(cfg: SweepConfig, seed: int):
    import optuna

    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: a trial still running counts as a poor result, so parallel workers spread out
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=cfg.n_startup_trials, constant_liar=True)


def study_create(*, name: str, cfg: SweepConfig, first_params: dict[str, Any] | None = None) -> None:
    """Create the study; ``first_params`` (if given) is queued as its first trial."""
    import optuna

    study = optuna.create_study(study_name=name, storage=storage(), direction=direction(cfg))
    if first_params:
        study.enqueue_trial(first_params)


def study_load(*, name: str, cfg: SweepConfig, seed: int, trial_number: int = 0):
    """The sweep's study; the sampler's seed moves with the trial number, so that workers asking at once
    (and a resumed sweep) do not draw the same random trial."""
    import optuna

    return optuna.load_study(study_name=name, storage=storage(), sampler=sampler(cfg, seed + trial_number))


def distributions(cfg: SweepConfig) -> dict[str, Any]:
    """The search space as Optuna distributions."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out = {}
    for name, rng in cfg.searched().items():
        out[name] = _distribution(
            PARAMETER_KINDS[name], rng, CategoricalDistribution, FloatDistribution, IntDistribution
        )
    return out


def _distribution(kind: str, rng: ParamRange, categorical, floating, integer):
    if rng.choices is not None:
        values = [bool(v) if kind == "bool" else int(v) if kind == "int" else float(v) for v in rng.choices]
        return categorical(values)
    if kind == "int":
        return integer(int(rng.low), int(rng.high), log=rng.log)
    return floating(float(rng.low), float(rng.high), log=rng.log)

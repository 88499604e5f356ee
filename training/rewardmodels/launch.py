"""Run a reward-model run spec outside Celery, on one or several GPUs with ``accelerate launch``.

Scale out in two ways:

* More workers: start ``celery -A config worker -Q training -c 1`` on any machine that reaches the same
  broker (``CELERY_BROKER_URL``), database (``DATABASE_URL``) and artifact volume (``PREFLAB_ARTIFACT_DIR``);
  each takes one queued run at a time.
* More GPUs for one run: write the run's spec and start it under accelerate::

      python -m training.rewardmodels.launch --run-id 42 --print-command --num-processes 4
      accelerate launch --multi_gpu --num_processes 4 --num_machines 1 --mixed_precision no \\
          -m training.rewardmodels.launch --run-id 42

  Rank 0 claims the run, streams progress/metrics to the database, saves the artifact, evaluates and
  registers it; the other ranks only train (TRL/transformers do the data-parallel work). With
  ``--spec spec.json`` (keys: base_model, snapshot_dir, config, seed, output_dir) no database is needed:
  rank 0 writes the model and ``metrics.json`` to ``output_dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any


def build_accelerate_command(
    *,
    run_id: int | None = None,
    spec_path: str | Path | None = None,
    num_processes: int = 1,
    num_machines: int = 1,
    machine_rank: int = 0,
    main_process_ip: str | None = None,
    main_process_port: int = 29500,
    mixed_precision: str = "no",
    gpu_ids: str | None = None,
    accelerate_bin: str | None = None,
) -> list[str]:
    """The ``accelerate launch`` argv that runs this module for a run id or a spec file."""
    if (run_id is None) == (spec_path is None):
        raise ValueError("give exactly one of run_id or spec_path")
    if num_processes < 1 or num_machines < 1:
        raise ValueError("num_processes and num_machines must be >= 1")
    if num_machines > 1 and not main_process_ip:
        raise ValueError("multi-machine launches need main_process_ip")
    if mixed_precision not in {"no", "fp16", "bf16", "fp8"}:
        raise ValueError(f"unknown mixed precision {mixed_precision!r}")
    exe = accelerate_bin or shutil.which("accelerate") or str(Path(sys.executable).with_name("accelerate"))
    cmd = [exe, "launch"]
    if num_processes > 1 or num_machines > 1:
        cmd.append("--multi_gpu")
    cmd += ["--num_processes", str(num_processes), "--num_machines", str(num_machines)]
    cmd += ["--mixed_precision", mixed_precision]
    if gpu_ids:
        cmd += ["--gpu_ids", gpu_ids]
    if num_machines > 1:
        cmd += ["--machine_rank", str(machine_rank), "--main_process_ip", main_process_ip]
        cmd += ["--main_process_port", str(main_process_port)]
    cmd += ["-m", "training.rewardmodels.launch"]
    cmd += ["--run-id", str(run_id)] if run_id is not None else ["--spec", str(spec_path)]
    return cmd


def run_spec_from_run(run) -> dict[str, Any]:
    """The standalone spec of a reward run (what ``--spec`` reads)."""
    return {
        "run_id": run.pk,
        "base_model": run.base_model,
        "snapshot_dir": run.snapshot.artifact_dir,
        "snapshot_hash": run.snapshot.content_hash,
        "config": run.config,
        "seed": run.seed,
        "output_dir": run.output_dir,
    }


def run_spec(spec: dict[str, Any]) -> dict[str, Any] | None:
    """Train (and on rank 0 evaluate, describe and save) from a spec dict; returns rank 0's metrics, else
    None. The evaluation and the card are the Celery executor's (``training.rewardmodels.evaluation``)."""
    from training.rewardmodels.evaluation import evaluate_and_describe
    from training.rewardmodels.trainer import RewardRunConfig, describe_ensemble, train_for_config

    cfg = RewardRunConfig.from_dict(spec.get("config"))
    out = Path(spec["output_dir"])
    seed = int(spec.get("seed", 42))
    trained = train_for_config(
        base_model=spec["base_model"], artifact_dir=spec["snapshot_dir"], cfg=cfg, seed=seed, output_dir=out
    )
    if not trained.is_main:
        return None
    described = evaluate_and_describe(
        trained.model,
        trained.tokenizer,
        snapshot_dir=spec["snapshot_dir"],
        params=cfg.to_dict(),
        max_length=cfg.max_length,
        batch_size=cfg.eval_batch_size,
        seed=seed,
        base_model=spec["base_model"],
        snapshot_hash=spec.get("snapshot_hash", ""),
        data=trained.data,
        run_id=spec.get("run_id"),
        encoding=trained.encoding,
    )
    describe_ensemble(trained, described, snapshot_dir=spec["snapshot_dir"], cfg=cfg, seed=seed)
    result = {**trained.summary(), "eval": described.metrics, "eval_split": described.split}
    (out / "metrics.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    described.card.write(out)
    return result


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.rewardmodels.launch", description=__doc__.split("\n\n")[0]
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run-id", type=int, help="a queued reward run in the database")
    source.add_argument("--spec", help="a JSON run spec (no database needed)")
    parser.add_argument("--print-command", action="store_true", help="print the accelerate command and exit")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--num-machines", type=int, default=1)
    parser.add_argument("--main-process-ip")
    args = parser.parse_args(argv)

    if args.print_command:
        cmd = build_accelerate_command(
            run_id=args.run_id,
            spec_path=args.spec,
            num_processes=args.num_processes,
            num_machines=args.num_machines,
            main_process_ip=args.main_process_ip,
        )
        print(" ".join(cmd))
        return 0
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()  # the spec path imports the models module but never queries the database
    if args.spec:
        result = run_spec(json.loads(Path(args.spec).read_text(encoding="utf-8")))
        if result is not None:
            print(
                json.dumps(
                    {k: v for k, v in result.items() if k != "eval"}
                    | {"eval": result["eval"].get("accuracy")}
                )
            )
        return 0

    from training import jobs
    from training.models import JobStatus, TrainingRun

    if _is_main_process():
        jobs.run_execute(run_id=args.run_id)  # claims, reports, saves, evaluates, registers
        return 0 if TrainingRun.objects.get(pk=args.run_id).status == JobStatus.SUCCEEDED else 1
    # other ranks: train in lock-step with rank 0, write nothing
    from training.rewardmodels.trainer import RewardRunConfig, train_for_config

    run = TrainingRun.objects.select_related("snapshot").get(pk=args.run_id)
    train_for_config(
        base_model=run.base_model,
        artifact_dir=run.snapshot.artifact_dir,
        cfg=RewardRunConfig.from_dict(run.config),
        seed=run.seed,
        output_dir=Path(run.output_dir).parent / f".rank-scratch-{run.pk}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

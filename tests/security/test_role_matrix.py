"""Permission matrix over every route, for every role and auth mode.

Who calls: an annotator, a reviewer and an engineer of the project, an admin (no membership), and an
annotator of another project ("outsider"); each with a logged-in session and with tokens of one scope each
(annotate, export, train, score). The routes come from the URL resolver (``tests.security.routes``), so a
new route is checked for server errors at once; the tables below pin the exact status of every route for
every caller, so a regression in any permission shows up as a named cell.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotation.models import Adjudication, AnnotatorFlag, Judgment, ProjectMembership
from tests.factories import make_task
from tests.security.conftest import ROLES, SCOPES, World
from tests.security.routes import route_ids, site_routes

AUTHS = (None, *SCOPES)  # None: session

# GET, route name -> one cell per caller in ROLES order (annotator, reviewer, engineer, admin, outsider);
# each cell is the status for: session, annotate token, export token, train token, score token.
# Reading it: 302 = a page sends a token caller to the login page (pages take sessions only); 404 = the
# project (or object) is invisible to the caller; 403 = visible but the role or the token scope is wrong;
# 405 = the route takes POST only (pages check the method before the role, so a 405 says nothing about
# permission there: writes are pinned in the write table below).
# fmt: off
GET_MATRIX: dict[str, tuple[str, str, str, str, str]] = {
    "home": ('200 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302'),
    "project-list": ('200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403'),
    "project-detail": ('200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '404 404 404 404 403'),
    "project-members": ('403 403 403 403 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '404 404 404 404 403'),
    "project-remove-member": ('405 405 405 405 403', '405 405 405 405 403', '405 405 405 405 403', '405 405 405 405 403', '405 405 405 405 403'),
    "prompt-list": ('200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403'),
    "prompt-detail": ('200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '404 404 404 404 403'),
    "candidate-list": ('200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403'),
    "candidate-detail": ('200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '404 404 404 404 403'),
    "task-list": ('200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403'),
    "task-detail": ('200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '404 404 404 404 403'),
    "judgment-list": ('200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403'),
    "judgment-detail": ('200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '200 200 200 200 403', '404 404 404 404 403'),
    "token-list": ('200 200 200 200 200', '200 200 200 200 200', '200 200 200 200 200', '200 200 200 200 200', '200 200 200 200 200'),
    "token-detail": ('200 200 200 200 200', '404 404 404 404 404', '404 404 404 404 404', '404 404 404 404 404', '404 404 404 404 404'),
    "project-import": ('405 403 403 405 403', '405 403 403 405 403', '405 403 403 405 403', '405 403 403 405 403', '405 403 403 405 403'),
    "api-task-next": ('405 405 403 403 403', '405 405 403 403 403', '405 405 403 403 403', '405 405 403 403 403', '405 405 403 403 403'),
    "api-task-submit": ('405 405 403 403 403', '405 405 403 403 403', '405 405 403 403 403', '405 405 403 403 403', '405 405 403 403 403'),
    "api-task-skip": ('405 405 403 403 403', '405 405 403 403 403', '405 405 403 403 403', '405 405 403 403 403', '405 405 403 403 403'),
    "api-task-adjudicate": ('403 403 403 403 403', '405 405 403 403 403', '403 403 403 403 403', '405 405 403 403 403', '403 403 403 403 403'),
    "api-judgment-undo": ('405 405 403 403 403', '405 405 403 403 403', '405 405 403 403 403', '405 405 403 403 403', '405 405 403 403 403'),
    "api-prompt-rank": ('405 405 403 403 403', '405 405 403 403 403', '405 405 403 403 403', '405 405 403 403 403', '405 405 403 403 403'),
    "api-review-queue": ('403 403 403 403 403', '200 200 403 403 403', '403 403 403 403 403', '200 200 403 403 403', '403 403 403 403 403'),
    "api-my-dashboard": ('200 200 403 403 403', '200 200 403 403 403', '200 200 403 403 403', '200 200 403 403 403', '200 200 403 403 403'),
    "api-quality-project": ('403 403 403 403 403', '200 403 200 403 403', '200 403 200 403 403', '200 403 200 403 403', '404 403 404 403 403'),
    "api-quality-annotator": ('403 403 403 403 403', '200 403 200 403 403', '200 403 200 403 403', '200 403 200 403 403', '404 403 404 403 403'),
    "api-quality-reliability": ('403 403 403 403 403', '200 403 200 403 403', '200 403 200 403 403', '200 403 200 403 403', '404 403 404 403 403'),
    "api-quality-leaderboard": ('403 403 403 403 403', '200 403 200 403 403', '200 403 200 403 403', '200 403 200 403 403', '404 403 404 403 403'),
    "api-quality-flags": ('403 403 403 403 403', '200 403 200 403 403', '200 403 200 403 403', '200 403 200 403 403', '404 403 404 403 403'),
    "api-quality-flags-refresh": ('405 403 405 403 403', '405 403 405 403 403', '405 403 405 403 403', '405 403 405 403 403', '405 403 405 403 403'),
    "api-quality-recompute": ('405 403 405 403 403', '405 403 405 403 403', '405 403 405 403 403', '405 403 405 403 403', '405 403 405 403 403'),
    "api-quality-flag-clear": ('405 403 405 403 403', '405 403 405 403 403', '405 403 405 403 403', '405 403 405 403 403', '405 403 405 403 403'),
    "snapshot-list": ('403 403 403 403 403', '403 403 403 403 403', '200 403 200 403 403', '200 403 200 403 403', '403 403 403 403 403'),
    "snapshot-detail": ('403 403 403 403 403', '403 403 403 403 403', '200 403 200 403 403', '200 403 200 403 403', '403 403 403 403 403'),
    "snapshot-card": ('403 403 403 403 403', '403 403 403 403 403', '200 403 200 403 403', '200 403 200 403 403', '403 403 403 403 403'),
    "snapshot-download": ('403 403 403 403 403', '403 403 403 403 403', '200 403 200 403 403', '200 403 200 403 403', '403 403 403 403 403'),
    "training-run-list": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "training-run-detail": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "training-run-live": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "training-run-metrics": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "training-run-cancel": ('403 403 403 403 403', '403 403 403 403 403', '405 403 403 405 403', '405 403 403 405 403', '403 403 403 403 403'),
    "training-run-retry": ('403 403 403 403 403', '403 403 403 403 403', '405 403 403 405 403', '405 403 403 405 403', '403 403 403 403 403'),
    "reward-model-list": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "reward-model-detail": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "reward-model-evaluate": ('403 403 403 403 403', '403 403 403 403 403', '405 403 403 405 403', '405 403 403 405 403', '403 403 403 403 403'),
    "reward-model-promote": ('403 403 403 403 403', '403 403 403 403 403', '405 403 403 405 403', '405 403 403 405 403', '403 403 403 403 403'),
    "project-active-reward-model": ('200 403 403 200 403', '200 403 403 200 403', '200 403 403 200 403', '200 403 403 200 403', '404 403 403 404 403'),
    "project-retrain": ('403 403 403 403 403', '403 403 403 403 403', '405 403 403 405 403', '405 403 403 405 403', '403 403 403 403 403'),
    "project-task-scoring": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "project-task-scoring-cancel": ('403 403 403 403 403', '403 403 403 403 403', '405 403 403 405 403', '405 403 403 405 403', '403 403 403 403 403'),
    "reward-model-live-agreement": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "policy-run-list": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "policy-run-detail": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "policy-run-openrlhf": ('403 403 403 403 403', '403 403 403 403 403', '405 403 403 405 403', '405 403 403 405 403', '403 403 403 403 403'),
    "policy-run-register": ('403 403 403 403 403', '403 403 403 403 403', '405 403 403 405 403', '405 403 403 405 403', '403 403 403 403 403'),
    "policy-version-list": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "policy-version-detail": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "policy-version-gate": ('403 403 403 403 403', '403 403 403 403 403', '405 403 403 405 403', '405 403 403 405 403', '403 403 403 403 403'),
    "policy-version-promote": ('403 403 403 403 403', '403 403 403 403 403', '405 403 403 405 403', '405 403 403 405 403', '403 403 403 403 403'),
    "policy-version-promotions": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "project-active-policy": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "api-spot-check-next": ('403 403 403 403 403', '200 200 403 403 403', '403 403 403 403 403', '200 200 403 403 403', '404 404 403 403 403'),
    "api-spot-check-verdicts": ('403 403 403 403 403', '200 200 403 403 403', '403 403 403 403 403', '200 200 403 403 403', '404 404 403 403 403'),
    "snapshot-lineage": ('403 403 403 403 403', '403 403 403 403 403', '200 403 200 403 403', '200 403 200 403 403', '403 403 403 403 403'),
    "snapshot-lineage-card": ('403 403 403 403 403', '403 403 403 403 403', '200 403 200 403 403', '200 403 200 403 403', '403 403 403 403 403'),
    "reward-model-lineage": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "reward-model-lineage-card": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "policy-run-lineage": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "policy-run-lineage-card": ('403 403 403 403 403', '403 403 403 403 403', '200 403 403 200 403', '200 403 403 200 403', '403 403 403 403 403'),
    "policy-battle-create": ('403 403 403 403 403', '403 403 403 403 403', '405 403 403 405 403', '405 403 403 405 403', '403 403 403 403 403'),
    "annotation:annotate": ('200 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '404 302 302 302 302'),
    "annotation:annotate-submit": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:annotate-skip": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:annotate-undo": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:annotate-next": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:annotate-feedback": ('404 302 302 302 302', '404 302 302 302 302', '404 302 302 302 302', '404 302 302 302 302', '404 302 302 302 302'),
    "annotation:review": ('403 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "annotation:review-adjudicate": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:dashboard": ('200 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302'),
    "annotation:quality-project": ('403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '404 302 302 302 302'),
    "annotation:quality-annotator": ('403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '404 302 302 302 302'),
    "annotation:quality-flag-create": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:quality-leaderboard": ('403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '404 302 302 302 302'),
    "annotation:quality-flags-refresh": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:quality-recompute": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:quality-flag-clear": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:project-new": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "annotation:guidelines-preview": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:project-edit": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '404 302 302 302 302'),
    "annotation:import": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '404 302 302 302 302'),
    "annotation:members": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '404 302 302 302 302'),
    "annotation:tasks": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '404 302 302 302 302'),
    "annotation:import-job": ('403 302 302 302 302', '403 302 302 302 302', '404 302 302 302 302', '404 302 302 302 302', '404 302 302 302 302'),
    "annotation:import-job-status": ('403 302 302 302 302', '403 302 302 302 302', '404 302 302 302 302', '404 302 302 302 302', '404 302 302 302 302'),
    "annotation:import-upload": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:import-job-start": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:invite-new": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:invite-revoke": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:member-change": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:tasks-bulk": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "training:snapshot_create": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "training:snapshot_count": ('403 302 302 302 302', '403 302 302 302 302', '400 302 302 302 302', '400 302 302 302 302', '403 302 302 302 302'),
    "training:snapshot_list": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "training:snapshot_detail": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "training:run_list": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "training:run_create": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "training:run_detail": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "training:run_live": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "training:run_cancel": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "training:run_retry": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "training:reward_model_list": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "training:reward_model_compare": ('403 302 302 302 302', '403 302 302 302 302', '404 302 302 302 302', '404 302 302 302 302', '403 302 302 302 302'),
    "training:reward_model_detail": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "training:reward_model_promote": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "training:reward_model_evaluate": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "training:policy_list": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "training:policy_create": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "training:policy_battle_create": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "training:policy_detail": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "training:policy_live": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "training:policy_cancel": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "training:policy_openrlhf": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "training:policy_register": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "training:policy_registry": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "training:policy_version": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "training:policy_gate": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "training:policy_promote": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "annotation:spot-check-verdicts": ('403 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "annotation:spot-check-verdict-submit": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
    "training:snapshot_lineage": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "training:reward_model_lineage": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "training:policy_lineage": ('403 302 302 302 302', '403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "rewardsvc:spot_check": ('403 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '200 302 302 302 302', '403 302 302 302 302'),
    "rewardsvc:spot_check_send": ('405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302', '405 302 302 302 302'),
}
# fmt: on


def _cell(route_name: str, role: str) -> list[int]:
    return [int(code) for code in GET_MATRIX[route_name][ROLES.index(role)].split()]


@pytest.mark.parametrize("role", ROLES)
def test_get_every_route_as_every_caller(world: World, role: str):
    """GET every non-public route as ``role`` with a session and with each single-scope token: never a
    server error, and exactly the status in GET_MATRIX for every listed route."""
    clients = {auth: world.client_for(role, auth) for auth in AUTHS}
    problems, checked = [], 0
    for route in site_routes(route_ids(world)):
        if route.is_public:
            continue
        got = [clients[auth].get(route.path).status_code for auth in AUTHS]
        checked += 1
        if any(code >= 500 for code in got):
            problems.append(f"{route.name} {route.path}: server error {got}")
        elif route.name in GET_MATRIX and got != _cell(route.name, role):
            problems.append(
                f"{route.name} {route.path} as {role} (session, annotate, export, train, score): "
                f"got {got}, expected {_cell(route.name, role)}"
            )
    assert checked >= len(GET_MATRIX) - 5
    assert not problems, "\n".join(problems)


def test_matrix_lists_only_live_routes(world: World):
    """A renamed or removed route must leave the table too (else the table silently checks nothing)."""
    names = {r.name for r in site_routes(route_ids(world))}
    assert set(GET_MATRIX) <= names, sorted(set(GET_MATRIX) - names)


def test_token_callers_never_reach_pages_and_score_tokens_reach_no_data(world: World):
    """Two rules every route (listed or not) keeps: pages take sessions only (a token caller is sent to
    the login page), and a token with only the ``score`` scope reads nothing but its own token list."""
    score_client = world.client_for("admin", "score")
    for route in site_routes(route_ids(world)):
        if route.is_public:
            continue
        response = score_client.get(route.path)
        if not route.is_api:
            assert response.status_code == 302 and "/accounts/login/" in response["Location"], route.path
        elif not route.name.startswith("token-"):
            assert response.status_code in (403, 404, 405), f"{route.path} -> {response.status_code}"


# ---------------------------------------------------------------------------------------------------------
# Writes: route, method, body -> expected status per caller (session). API rows also name the token scope
# the write needs: a token of that scope gets the session's status, a token of any other scope gets 403.


def _fresh_task(world: World):
    return make_task(world.project)


def _writes(world: World) -> list[dict]:
    p, rm = world.project.pk, world.reward_model.pk
    fresh = _fresh_task(world)
    spot_check = make_task(world.project, kind="spot_check")

    def upload():  # a fresh file per request: the test client reads (consumes) what it sends
        return SimpleUploadedFile(
            "items.jsonl", b'{"prompt": "imported prompt", "chosen": "yes", "rejected": "no"}\n'
        )

    return [
        {
            "name": "project-list",
            "kwargs": {},
            "method": "post",
            "body": {"name": "created-by-matrix"},
            "scope": "train",
            "expect": {"annotator": 403, "reviewer": 403, "engineer": 201, "admin": 201, "outsider": 403},
        },
        {
            "name": "project-detail",
            "kwargs": {"pk": p},
            "method": "patch",
            "body": {"description": "changed"},
            "scope": "train",
            "expect": {"annotator": 403, "reviewer": 403, "engineer": 200, "admin": 200, "outsider": 404},
        },
        {
            "name": "project-members",
            "kwargs": {"pk": p},
            "method": "post",
            "body": {"user_id": world.users["outsider"].pk, "role": "annotator"},
            "scope": "train",
            "expect": {"annotator": 403, "reviewer": 403, "engineer": 201, "admin": 201, "outsider": 404},
        },
        {
            "name": "prompt-list",
            "kwargs": {},
            "method": "post",
            "body": {"project": p, "text": "a prompt added by the matrix"},
            "scope": "train",
            "expect": {"annotator": 403, "reviewer": 403, "engineer": 201, "admin": 201, "outsider": 404},
        },
        {
            "name": "judgment-list",
            "kwargs": {},
            "method": "post",
            "body": {"task": fresh.pk, "choice": "A", "strength": 2},
            "scope": "annotate",
            "expect": {"annotator": 201, "reviewer": 201, "engineer": 201, "admin": 201, "outsider": 400},
        },
        {
            "name": "api-task-submit",
            "kwargs": {"task_id": fresh.pk},
            "method": "post",
            "body": {"choice": "B", "strength": 2},
            "scope": "annotate",
            "expect": {"annotator": 201, "reviewer": 201, "engineer": 201, "admin": 201, "outsider": 404},
        },
        {
            "name": "api-task-adjudicate",
            "kwargs": {"task_id": world.review_task.pk},
            "method": "post",
            "body": {"choice": "A"},
            "scope": "annotate",
            "expect": {"annotator": 403, "reviewer": 201, "engineer": 403, "admin": 201, "outsider": 403},
        },
        {
            "name": "api-quality-flag-clear",
            "kwargs": {"flag_id": world.flag.pk},
            "method": "post",
            "body": {"note": "checked"},
            "scope": "export",
            "expect": {"annotator": 403, "reviewer": 200, "engineer": 200, "admin": 200, "outsider": 404},
        },
        {
            "name": "reward-model-promote",
            "kwargs": {"model_id": rm},
            "method": "post",
            "body": {"force": True, "reason": "matrix"},
            "scope": "train",
            "expect": {"annotator": 403, "reviewer": 403, "engineer": 200, "admin": 200, "outsider": 403},
        },
        {
            "name": "policy-version-promote",
            "kwargs": {"policy_id": world.policy_version.pk},
            "method": "post",
            "body": {"force": True, "reason": "matrix"},
            "scope": "train",
            "expect": {"annotator": 403, "reviewer": 403, "engineer": 200, "admin": 200, "outsider": 403},
        },
        {
            "name": "api-spot-check-verdicts",
            "kwargs": {"project_id": p},
            "method": "post",
            "body": {"candidate": spot_check.candidate_a_id, "verdict": "reward_hacking"},
            "scope": "annotate",
            "expect": {"annotator": 403, "reviewer": 201, "engineer": 403, "admin": 201, "outsider": 404},
        },
        {
            "name": "training-run-cancel",
            "kwargs": {"run_id": world.run.pk},
            "method": "post",
            "body": {},
            "scope": "train",
            "expect": {"annotator": 403, "reviewer": 403, "engineer": 409, "admin": 409, "outsider": 403},
        },
        {
            "name": "project-import",
            "kwargs": {"project_id": p},
            "method": "post",
            "body": {"file": upload},
            "multipart": True,
            "scope": "train",
            # the rule of every project write (can_manage): an invisible project is 404
            "expect": {"annotator": 403, "reviewer": 403, "engineer": 201, "admin": 201, "outsider": 404},
        },
        {
            "name": "annotation:annotate-submit",
            "kwargs": {"project_id": p, "task_id": fresh.pk},
            "method": "post",
            "body": {"choice": "A", "strength": "2", "idempotency_key": "matrix-1"},
            "multipart": True,
            "expect": {"annotator": 302, "reviewer": 302, "engineer": 302, "admin": 302, "outsider": 404},
        },
        {
            "name": "annotation:review-adjudicate",
            "kwargs": {"project_id": p, "task_id": world.review_task.pk},
            "method": "post",
            "body": {"choice": "A"},
            "multipart": True,
            "expect": {"annotator": 403, "reviewer": 302, "engineer": 403, "admin": 302, "outsider": 403},
        },
        {
            "name": "annotation:quality-flag-create",
            "kwargs": {"project_id": p, "annotator_id": world.users["annotator"].pk},
            "method": "post",
            "body": {"note": "manual"},
            "multipart": True,
            "expect": {"annotator": 403, "reviewer": 302, "engineer": 302, "admin": 302, "outsider": 404},
        },
        {
            "name": "training:reward_model_promote",
            "kwargs": {"model_id": rm},
            "method": "post",
            "body": {"force": "on", "reason": "matrix"},
            "multipart": True,
            "expect": {"annotator": 403, "reviewer": 403, "engineer": 302, "admin": 302, "outsider": 403},
        },
        {
            "name": "rewardsvc:spot_check_send",
            "kwargs": {},
            "method": "post",
            "body": {"reward_model": rm, "project": p},
            "multipart": True,
            "expect": {"annotator": 403, "reviewer": 302, "engineer": 302, "admin": 302, "outsider": 403},
        },
    ]


WRITE_NAMES = [
    "project-list",
    "project-detail",
    "project-members",
    "prompt-list",
    "judgment-list",
    "api-task-submit",
    "api-task-adjudicate",
    "api-quality-flag-clear",
    "policy-version-promote",
    "api-spot-check-verdicts",
    "reward-model-promote",
    "training-run-cancel",
    "project-import",
    "annotation:annotate-submit",
    "annotation:review-adjudicate",
    "annotation:quality-flag-create",
    "training:reward_model_promote",
    "rewardsvc:spot_check_send",
]


def _send(client, case: dict):
    path = reverse(case["name"], kwargs=case["kwargs"])
    if case.get("multipart"):
        body = {k: v() if callable(v) else v for k, v in case["body"].items()}
        return getattr(client, case["method"])(path, body)
    return getattr(client, case["method"])(path, case["body"], content_type="application/json")


@pytest.mark.parametrize("name", WRITE_NAMES)
@pytest.mark.parametrize("role", ROLES)
def test_write_as_caller(world: World, role: str, name: str):
    """Pages: the session gets the listed status. API writes: every token without the needed scope gets
    403 (refused before any lookup), the session gets the listed status where it is a refusal, and a token
    with the needed scope gets the listed status (success included)."""
    case = next(c for c in _writes(world) if c["name"] == name)
    expected = case["expect"][role]
    if not case.get("scope"):
        response = _send(world.client_for(role), case)
        assert response.status_code == expected, response.content[:300]
        return
    for scope in SCOPES:
        if scope != case["scope"]:
            response = _send(world.client_for(role, scope), case)
            assert response.status_code == 403, (scope, response.content[:300])
    if expected >= 400:
        response = _send(world.client_for(role), case)
        assert response.status_code == expected, ("session", response.content[:300])
    response = _send(world.client_for(role, case["scope"]), case)
    assert response.status_code == expected, (case["scope"], response.content[:300])


def test_refused_writes_change_nothing(world: World):
    """A refused write leaves no trace: the annotator's attempts to adjudicate, flag and add a member."""
    annotator = world.client_for("annotator")
    for case in _writes(world):
        if case["name"] in ("api-task-adjudicate", "annotation:quality-flag-create", "project-members"):
            assert _send(annotator, case).status_code == 403
    assert not Adjudication.objects.filter(task=world.review_task).exists()
    assert AnnotatorFlag.objects.filter(project=world.project).count() == 1
    assert not ProjectMembership.objects.filter(project=world.project, user=world.users["outsider"]).exists()
    assert Judgment.objects.filter(task=world.review_task).count() == 2

"""Annotation data: projects, prompts, candidate responses, comparison tasks, judgments and the people.

Invariants live in the database (constraints in ``Meta`` plus the composite foreign keys added by migration
0002): one judgment per (task, annotator), both candidates of a task belong to the task's prompt, and a task
never compares a candidate with itself. One module per subject; every name is importable from here.
"""

from annotation.models.imports import (  # noqa: F401
    ImportBatch,
    ImportJob,
    ImportJobStatus,
)
from annotation.models.items import (  # noqa: F401
    Candidate,
    ComparisonTask,
    Prompt,
    TaskKind,
    TaskStatus,
)
from annotation.models.judgments import (  # noqa: F401
    COUNTED_JUDGMENTS,
    Adjudication,
    Judgment,
    JudgmentSource,
    Ranking,
    TaskLease,
    TaskSkip,
)
from annotation.models.projects import (  # noqa: F401
    DB_INT_MAX,
    EXTRA_CRITERIA_MAX,
    LEASE_SECONDS_MAX,
    PAIRS_PER_PROMPT_MAX,
    UNDO_GRACE_SECONDS_MAX,
    Choice,
    ModelPairing,
    PairingStrategy,
    Project,
    ProjectInvite,
    ProjectMembership,
    Role,
    ServingOrder,
    _ranking_length_default,
    content_hash,
    validate_extra_criteria,
    validate_quality_settings,
    validate_ranking_length,
)
from annotation.models.quality import (  # noqa: F401
    SPOT_CHECK_NOTE_MAX,
    AnnotatorFlag,
    FlagStatus,
    ProjectQualityReport,
    SpotCheckVerdict,
    SpotCheckVerdictChoice,
)
from annotation.models.tokens import (  # noqa: F401
    ApiToken,
    TokenScope,
)

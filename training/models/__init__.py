"""Training data: immutable dataset snapshots, training runs (RM / SFT / PPO / GRPO / RLOO / DPO), metrics,
the reward model registry, evaluations and promotions, reward-model sweeps, the policy registry with its
promotions, and capability gate results. One module per subject; every name is importable from here.

Lineage: Judgment ids -> DatasetSnapshot (spec, ids file, content hash) -> TrainingRun -> RewardModel ->
ModelEvaluation / Promotion; a policy TrainingRun -> PolicyVersion (card, lineage) -> PolicyPromotion.
"""

from training.models.policies import (  # noqa: F401
    POLICY_VERSION_KINDS,
    CapabilityResult,
    ModelRole,
    PolicyPromotion,
    PolicyVersion,
)
from training.models.rewardmodels import (  # noqa: F401
    LiveAgreement,
    ModelEvaluation,
    Promotion,
    RewardModel,
    TaskScoringJob,
    TaskScoringStatus,
)
from training.models.runs import (  # noqa: F401
    RunKind,
    RunMetric,
    TrainingRun,
)
from training.models.snapshots import (  # noqa: F401
    FINISHED_STATUSES,
    SEED_MAX,
    DatasetSnapshot,
    ImmutableSnapshotError,
    JobStatus,
    check_seed,
)
from training.models.sweeps import (  # noqa: F401
    RewardModelSweep,
    SweepTrial,
    TrialState,
)

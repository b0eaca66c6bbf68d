"""Pure planning: operations → dependency graph → batches (no I/O; DESIGN.md principle 1)."""

from bulk_engine.planning.batcher import Batcher, BatchLimits, PlannedBatch, plan_all
from bulk_engine.planning.graph import (
    AD_CREATING_KINDS,
    ADSET_CREATING_KINDS,
    DRY_RUN_RESULT,
    Cascade,
    DependencyCycleError,
    DependencyGraph,
    DuplicateOperationError,
    InvalidTransitionError,
    Operation,
    OpKind,
    OpState,
    PlanningError,
    UnknownReferenceError,
)

__all__ = [
    "ADSET_CREATING_KINDS",
    "AD_CREATING_KINDS",
    "DRY_RUN_RESULT",
    "BatchLimits",
    "Batcher",
    "Cascade",
    "DependencyCycleError",
    "DependencyGraph",
    "DuplicateOperationError",
    "InvalidTransitionError",
    "OpKind",
    "OpState",
    "Operation",
    "PlannedBatch",
    "PlanningError",
    "UnknownReferenceError",
    "plan_all",
]

"""Dependency graph: validation before sending, state machine, cascades, streaming windows."""

from __future__ import annotations

from typing import Any

import pytest

from bulk_engine.planning.graph import (
    DRY_RUN_RESULT,
    Cascade,
    DependencyCycleError,
    DependencyGraph,
    DuplicateOperationError,
    InvalidTransitionError,
    Operation,
    OpKind,
    OpState,
    UnknownReferenceError,
)
from bulk_engine.protocol.refs import Ref, UnresolvedReferenceError

ACCOUNT = "act_1"


def op(
    op_id: str, *deps: str, account: str = ACCOUNT, kind: OpKind = OpKind.CREATE_OTHER, **params: Any
) -> Operation:
    all_params: dict[str, Any] = {f"dep{i}": Ref(d) for i, d in enumerate(deps)}
    all_params.update(params)
    return Operation(
        op_id=op_id, method="POST", path=f"{account}/things", params=all_params, account_id=account, kind=kind
    )


def ids(ops: list[Operation]) -> list[str]:
    return [o.op_id for o in ops]


# ----------------------------------------------------------------------------- Operation


def test_dependencies_come_from_refs_in_path_and_nested_params() -> None:
    operation = Operation(
        op_id="ad-1",
        method="POST",
        path=(Ref("acct-op"), "ads"),
        params={
            "adset_id": Ref("s"),
            "creative": {"creative_id": Ref("cr")},
            "x": [{"y": Ref("s", "$.data.*.id")}],
        },
        account_id=ACCOUNT,
        kind=OpKind.CREATE_AD,
    )
    assert operation.dependencies == {"acct-op", "s", "cr"}
    assert operation.refs == (Ref("acct-op"), Ref("s"), Ref("cr"), Ref("s", "$.data.*.id"))
    assert operation.path_parts == (Ref("acct-op"), "ads")


def test_path_forms() -> None:
    assert op("a").path_parts == ("act_1/things",)
    by_ref = Operation(op_id="u", method="POST", path=Ref("c"), account_id=ACCOUNT, kind=OpKind.UPDATE)
    assert by_ref.path_parts == (Ref("c"),) and by_ref.dependencies == {"c"}
    as_list = Operation(
        op_id="u",
        method="POST",
        path=[Ref("c"), "copies"],  # type: ignore[arg-type]
        account_id=ACCOUNT,
        kind=OpKind.COPY,
    )
    assert as_list.path == (Ref("c"), "copies")


def test_operation_is_hashable_and_kind_coerced() -> None:
    o = Operation(op_id="a", method="GET", path="1", account_id=ACCOUNT, kind="read")  # type: ignore[arg-type]
    assert o.kind is OpKind.READ
    assert {o: 1}[o] == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"op_id": ""}, ValueError),
        ({"method": "PATCH"}, ValueError),
        ({"account_id": ""}, ValueError),
        ({"path": ("a", 5)}, TypeError),
        ({"params": ["not", "a", "mapping"]}, TypeError),
        ({"kind": "nonsense"}, ValueError),
    ],
)
def test_operation_validation(kwargs: dict[str, Any], error: type[Exception]) -> None:
    base: dict[str, Any] = {
        "op_id": "a",
        "method": "POST",
        "path": "x",
        "account_id": ACCOUNT,
        "kind": OpKind.UPDATE,
    }
    base.update(kwargs)
    with pytest.raises(error):
        Operation(**base)


# ----------------------------------------------------------------------------- validation


def test_duplicates_rejected_within_window_and_against_graph() -> None:
    with pytest.raises(DuplicateOperationError, match="a, b"):
        DependencyGraph([op("a"), op("b"), op("a"), op("b")])
    graph = DependencyGraph([op("a")])
    with pytest.raises(DuplicateOperationError) as info:
        graph.add([op("a")])
    assert info.value.op_ids == ("a",)
    graph.add_resolved("done", {"id": "1"})
    with pytest.raises(DuplicateOperationError):
        graph.add_resolved("done", {"id": "1"})


def test_unknown_reference_names_op_and_target() -> None:
    with pytest.raises(UnknownReferenceError) as info:
        DependencyGraph([op("a"), op("b", "a", "ghost"), op("c", "phantom")])
    assert info.value.missing == {"b": ("ghost",), "c": ("phantom",)}
    assert "b → ghost" in str(info.value)


@pytest.mark.parametrize(
    ("ops", "cycle"),
    [
        ([op("a", "a")], ("a",)),
        ([op("a", "b"), op("b", "a")], ("a", "b")),
        ([op("x"), op("a", "c"), op("b", "a"), op("c", "b"), op("d", "a")], ("a", "b", "c")),
    ],
)
def test_cycles_rejected_with_their_members(ops: list[Operation], cycle: tuple[str, ...]) -> None:
    with pytest.raises(DependencyCycleError) as info:
        DependencyGraph(ops)
    assert set(info.value.cycle) == set(cycle)
    assert " -> ".join(info.value.cycle) in str(info.value)


def test_cycle_reported_in_dependency_order() -> None:
    with pytest.raises(DependencyCycleError) as info:
        DependencyGraph([op("a", "c"), op("b", "a"), op("c", "b")])
    cycle = info.value.cycle
    # each element is the parent of the next one
    for parent, child in zip(cycle, cycle[1:] + cycle[:1], strict=True):
        assert parent in {"a": {"c"}, "b": {"a"}, "c": {"b"}}[child]


def test_failed_validation_adds_nothing() -> None:
    graph = DependencyGraph([op("a")])
    with pytest.raises(UnknownReferenceError):
        graph.add([op("b"), op("c", "nope")])
    assert "b" not in graph and len(graph) == 1


def test_children_listed_before_parents_are_accepted() -> None:
    graph = DependencyGraph([op("ad", "adset"), op("adset", "camp"), op("camp")])
    assert ids(graph.ready_ops()) == ["camp"]


# ----------------------------------------------------------------------------- state machine


def test_ready_ops_and_release_in_order() -> None:
    graph = DependencyGraph([op("camp"), op("cr"), op("adset", "camp"), op("ad", "adset", "cr")])
    assert ids(graph.ready_ops()) == ["camp", "cr"]
    assert graph.mark_succeeded("camp", {"id": "10"}) == []
    assert ids(graph.ready_ops()) == ["cr", "adset"]
    graph.mark_succeeded("adset", {"id": "20"})
    assert "ad" not in ids(graph.ready_ops())  # still needs the creative
    graph.mark_succeeded("cr", {"id": "30"})
    assert ids(graph.ready_ops()) == ["ad"]
    assert graph.resolve_ref(Ref("adset")) == "20"
    graph.mark_succeeded("ad", {"id": "40"})
    assert graph.is_finished and graph.unfinished == 0
    assert graph.counts()[OpState.SUCCEEDED] == 4
    assert graph.result("ad") == {"id": "40"}


def test_mark_failed_skips_dependents_transitively_once() -> None:
    graph = DependencyGraph(
        [op("camp"), op("s1", "camp"), op("s2", "camp"), op("ad", "s1", "s2"), op("other")]
    )
    skipped = graph.mark_failed("camp", "code 100")
    assert [c.op_id for c in skipped] == ["s1", "s2", "ad"]
    assert all(c.state is OpState.SKIPPED and c.cause_op_id == "camp" for c in skipped)
    assert skipped[0].reason == "dependency 'camp' failed"
    assert skipped[2].reason == "dependency 's1' skipped"
    assert graph.state("camp") is OpState.FAILED and graph.reason("camp") == "code 100"
    assert ids(graph.ready_ops()) == ["other"]
    assert graph.unfinished == 1


def test_in_flight_dependents_are_skipped_too() -> None:
    graph = DependencyGraph([op("camp"), op("s1", "camp")])
    graph.mark_in_flight(["camp", "s1"])  # same batch
    assert [c.op_id for c in graph.mark_failed("camp")] == ["s1"]
    with pytest.raises(InvalidTransitionError):
        graph.mark_succeeded("s1", {"id": "x"})  # the runner must check state() first


def test_mark_skipped() -> None:
    graph = DependencyGraph([op("a"), op("b", "a")])
    assert graph.mark_skipped("a", "cancelled") == [
        Cascade("b", OpState.SKIPPED, "dependency 'a' skipped", "a")
    ]
    assert graph.state("a") is OpState.SKIPPED and graph.reason("a") == "cancelled"


def test_requeue_returns_op_to_ready() -> None:
    graph = DependencyGraph([op("a"), op("b", "a")])
    graph.mark_in_flight(["a", "b"])
    assert graph.ready_ops() == []
    graph.requeue("b")
    assert graph.ready_ops() == [] and graph.state("b") is OpState.PENDING  # still waits for a
    graph.requeue("a")
    assert ids(graph.ready_ops()) == ["a"]


@pytest.mark.parametrize(
    "action",
    [
        lambda g: g.mark_succeeded("ghost", {}),
        lambda g: g.mark_in_flight(["done"]),
        lambda g: g.requeue("a"),  # not in flight
        lambda g: g.mark_failed("done"),
        lambda g: g.mark_skipped("ext"),  # registered result, no Operation
    ],
)
def test_invalid_transitions(action: Any) -> None:
    graph = DependencyGraph([op("a"), op("done")])
    graph.add_resolved("ext", {"id": "9"})
    graph.mark_succeeded("done", {"id": "1"})
    with pytest.raises(InvalidTransitionError):
        action(graph)


def test_success_requires_successful_dependencies() -> None:
    graph = DependencyGraph([op("a"), op("b", "a")])
    graph.mark_in_flight(["a", "b"])
    graph.requeue("a")  # null entry for the parent
    with pytest.raises(InvalidTransitionError, match="still depends on a"):
        graph.mark_succeeded("b", {"id": "2"})


def test_success_from_pending_is_allowed_for_reconciliation() -> None:
    graph = DependencyGraph([op("a")])
    graph.mark_succeeded("a", {"id": "found-on-server"})
    assert graph.ready_ops() == [] and graph.state("a") is OpState.SUCCEEDED


def test_result_missing_the_path_fails_the_dependent_and_skips_below() -> None:
    graph = DependencyGraph([op("img"), op("cr", img_hash=Ref("img", "$.images.*.hash")), op("ad", "cr")])
    cascades = graph.mark_succeeded("img", {"id": "no images here"})
    assert [(c.op_id, c.state) for c in cascades] == [("cr", OpState.FAILED), ("ad", OpState.SKIPPED)]
    assert "$.images.*.hash" in cascades[0].reason and cascades[0].cause_op_id == "img"


def test_resolve_ref_requires_success() -> None:
    graph = DependencyGraph([op("a")])
    with pytest.raises(UnresolvedReferenceError):
        graph.resolve_ref(Ref("a"))


def test_dry_run_results_resolve_to_placeholders() -> None:
    graph = DependencyGraph([op("a"), op("b", "a")])
    graph.mark_succeeded("a", DRY_RUN_RESULT)
    assert graph.resolve_ref(Ref("a", "$.data.*.id")) == "<a:$.data.*.id>"
    assert repr(DRY_RUN_RESULT) == "DRY_RUN_RESULT"


# ----------------------------------------------------------------------------- streaming windows


def test_window_referencing_completed_ops_is_ready_immediately() -> None:
    graph = DependencyGraph([op("camp")])
    graph.mark_succeeded("camp", {"id": "123"})
    assert graph.add([op("adset", "camp")]) == []
    assert ids(graph.ready_ops()) == ["adset"]
    assert graph.resolve_ref(Ref("camp")) == "123"


def test_window_referencing_pending_ops_waits() -> None:
    graph = DependencyGraph([op("camp")])
    graph.add([op("adset", "camp")])
    assert ids(graph.ready_ops()) == ["camp"]
    assert graph.dependents("camp") == ("adset",)


def test_window_referencing_failed_op_is_skipped_on_add() -> None:
    graph = DependencyGraph([op("camp")])
    graph.mark_failed("camp")
    cascades = graph.add([op("adset", "camp"), op("ad", "adset"), op("free")])
    assert [(c.op_id, c.state) for c in cascades] == [("adset", OpState.SKIPPED), ("ad", OpState.SKIPPED)]
    assert ids(graph.ready_ops()) == ["free"]


def test_window_with_unresolvable_ref_to_known_result_fails_on_add() -> None:
    graph = DependencyGraph()
    graph.add_resolved("prev-run-campaign", {"id": "55"})
    cascades = graph.add([op("x", bad=Ref("prev-run-campaign", "$.data.*.id")), op("y", "prev-run-campaign")])
    assert [(c.op_id, c.state) for c in cascades] == [("x", OpState.FAILED)]
    assert ids(graph.ready_ops()) == ["y"]
    assert graph.resolve_ref(Ref("prev-run-campaign")) == "55"


def test_ready_by_account() -> None:
    graph = DependencyGraph([op("a", account="act_2"), op("b"), op("c", account="act_2")])
    assert graph.ready_accounts() == ["act_2", "act_1"]
    assert ids(graph.ready_ops("act_2")) == ["a", "c"]
    assert graph.ready_ids("act_9") == []
    assert ids(graph.operations()) == ["a", "b", "c"]
    assert graph.operation("b").account_id == "act_1"

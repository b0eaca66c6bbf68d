"""Property tests on random DAGs: placement, ordering, limits, and terminal states under failures."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_planning_batcher import check_invariants

from bulk_engine.planning.batcher import Batcher, BatchLimits, PlannedBatch, plan_all
from bulk_engine.planning.graph import DependencyGraph, Operation, OpKind, OpState
from bulk_engine.protocol.batch import encode_batch
from bulk_engine.protocol.refs import Ref

KINDS = list(OpKind)
ACCOUNTS = ["act_1", "act_2", "act_3"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def dags(draw: st.DrawFn, max_ops: int = 120) -> list[Operation]:
    """Random jobs: each op may reference up to 3 earlier ops (in params or path); ad sets name a
    campaign by literal id or by reference; the listing order is optionally shuffled."""
    n = draw(st.integers(1, max_ops))
    single_account = draw(st.booleans())
    ops: list[Operation] = []
    for i in range(n):
        kind = draw(st.sampled_from(KINDS))
        account = ACCOUNTS[0] if single_account else draw(st.sampled_from(ACCOUNTS))
        params: dict[str, Any] = {}
        if i:
            for j, parent in enumerate(draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True))):
                ref_path = draw(st.sampled_from(["$.id", "$.id", "$.data.*.id", "$.images.*.hash"]))
                params[f"p{j}"] = (
                    Ref(ops[parent].op_id, ref_path) if j % 2 == 0 else {"nested": [Ref(ops[parent].op_id)]}
                )
        if kind in (OpKind.CREATE_ADSET, OpKind.COPY_ADSET):
            earlier_campaigns = [o.op_id for o in ops if o.kind is OpKind.CREATE_CAMPAIGN]
            choice = draw(st.integers(0, 2))
            if choice == 0 and earlier_campaigns:
                params["campaign_id"] = Ref(draw(st.sampled_from(earlier_campaigns)))
            elif choice == 1:
                params["campaign_id"] = draw(st.sampled_from(["111", "222"]))
        path: Any = f"{account}/x"
        if i and draw(st.integers(0, 5)) == 0:
            path = (Ref(ops[draw(st.integers(0, i - 1))].op_id), "copies")
        ops.append(
            Operation(
                op_id=f"op-{i}" if draw(st.integers(0, 9)) else f"op {i}:{{}}",  # some unsafe names
                method="POST",
                path=path,
                params=params,
                account_id=account,
                kind=kind,
            )
        )
    if draw(st.booleans()):
        ops = draw(st.permutations(ops))
    return ops


limits_strategy = st.builds(
    BatchLimits,
    max_ops=st.sampled_from([1, 2, 3, 7, 50]),
    max_ad_creates=st.sampled_from([1, 2, 10]),
    open_batches=st.sampled_from([1, 2, 8]),
)


@SETTINGS
@given(dags(), limits_strategy)
def test_every_op_placed_once_after_its_dependencies_within_limits(
    ops: list[Operation], limits: BatchLimits
) -> None:
    batches = plan_all(ops, limits)
    assert sum(len(b) for b in batches) == len(ops)
    check_invariants(batches, limits)


@SETTINGS
@given(dags(max_ops=60))
def test_rendered_batches_reference_only_earlier_names(ops: list[Operation]) -> None:
    graph = DependencyGraph(ops)
    batcher = Batcher(graph)
    while not graph.is_finished:
        batches = batcher.next_batches()
        assert batches
        for batch in batches:
            wire = json.loads(encode_batch(batcher.render(batch)))
            names_so_far: set[str] = set()
            for entry in wire:
                text = entry.get("body", "") + entry["relative_url"]
                for name in batch.names.values():
                    if f"{{result={name}:" in text:
                        assert name in names_so_far
                if "name" in entry:
                    names_so_far.add(entry["name"])
                    assert entry["omit_response_on_success"] is False
            for op in batch.ops:
                graph.mark_succeeded(op.op_id, _result_for(op))


def _result_for(op: Operation) -> Any:
    return {"id": f"id-{op.op_id}", "data": [{"id": "d1"}, {"id": "d2"}], "images": {"f": {"hash": "h"}}}


@SETTINGS
@given(dags(max_ops=80), st.randoms(use_true_random=False), limits_strategy, st.booleans())
def test_random_outcomes_end_every_op_in_exactly_one_terminal_state(
    ops: list[Operation], rnd: Any, limits: BatchLimits, streaming: bool
) -> None:
    """Simulate a runner: random success / failure / retry per op; windows fed incrementally."""
    graph = DependencyGraph()
    batcher = Batcher(graph, limits)
    topo = _topological(ops)
    windows = [topo[i : i + 17] for i in range(0, len(topo), 17)] if streaming else [ops]
    failed_roots: set[str] = set()
    terminal_events: dict[str, OpState] = {}
    rounds = 0
    for window in windows:
        for c in graph.add(window):
            terminal_events[c.op_id] = c.state
        while True:
            rounds += 1
            assert rounds < 10_000
            batches = batcher.next_batches(flush=rnd.random() < 0.7 or graph.unfinished < 60)
            if not batches:
                batches = batcher.next_batches()
            if not batches:
                break
            for batch in batches:
                batcher.render(batch)  # every reference must be renderable
                for op in batch.ops:
                    if graph.state(op.op_id) is not OpState.IN_FLIGHT:
                        continue  # skipped because an earlier op of this batch failed
                    roll = rnd.random()
                    if any(graph.state(d) is not OpState.SUCCEEDED for d in op.dependencies):
                        graph.requeue(op.op_id)  # its in-batch parent timed out: so does it
                    elif roll < 0.1:
                        failed_roots.add(op.op_id)
                        terminal_events[op.op_id] = OpState.FAILED
                        for c in graph.mark_failed(op.op_id, "boom"):
                            terminal_events[c.op_id] = c.state
                    elif roll < 0.25:
                        graph.requeue(op.op_id)
                    else:
                        terminal_events[op.op_id] = OpState.SUCCEEDED
                        for c in graph.mark_succeeded(op.op_id, _result_for(op)):
                            terminal_events[c.op_id] = c.state
        assert graph.unfinished == 0 or window is not windows[-1]
    assert graph.is_finished
    assert set(terminal_events) == {op.op_id for op in ops}
    for op in ops:
        state = graph.state(op.op_id)
        assert terminal_events[op.op_id] is state
        if state is OpState.SKIPPED:
            assert _has_failed_ancestor(op.op_id, graph, failed_roots)
        if state is OpState.SUCCEEDED:
            assert all(graph.state(d) is OpState.SUCCEEDED for d in op.dependencies)


def _topological(ops: list[Operation]) -> list[Operation]:
    by_id = {op.op_id: op for op in ops}
    out: list[Operation] = []
    done: set[str] = set()

    def visit(op: Operation) -> None:
        if op.op_id in done:
            return
        done.add(op.op_id)
        for dep in sorted(op.dependencies):
            visit(by_id[dep])
        out.append(op)

    for op in ops:
        visit(op)
    return out


def _has_failed_ancestor(op_id: str, graph: DependencyGraph, failed: set[str]) -> bool:
    stack = list(graph.operation(op_id).dependencies)
    seen: set[str] = set()
    while stack:
        dep = stack.pop()
        if dep in failed:
            return True
        if dep not in seen:
            seen.add(dep)
            stack.extend(graph.operation(dep).dependencies)
    return False


@SETTINGS
@given(st.integers(1, 400), st.integers(0, 400), st.permutations(range(3)))
def test_flat_mixes_hit_the_lower_bound(n_updates: int, n_ads: int, order: list[int]) -> None:
    groups = [
        [
            Operation(op_id=f"u{i}", method="POST", path=str(i), account_id="act_1", kind=OpKind.UPDATE)
            for i in range(n_updates)
        ],
        [
            Operation(
                op_id=f"a{i}", method="POST", path="act_1/ads", account_id="act_1", kind=OpKind.CREATE_AD
            )
            for i in range(n_ads)
        ],
        [],
    ]
    ops = [op for g in order for op in groups[g]]
    batches = plan_all(ops)
    lower = max(math.ceil(len(ops) / 50), math.ceil(n_ads / 10))
    assert len(batches) == lower


@SETTINGS
@given(
    dags(max_ops=120),
    st.randoms(use_true_random=False),
    limits_strategy,
    st.sampled_from([1, 1, 2, 3, 5]),
)
def test_capped_calls_with_random_outcomes_keep_every_rule(
    ops: list[Operation], rnd: Any, limits: BatchLimits, cap: int
) -> None:
    """A runner asking for a few batches per call (batches packed beyond the cap are held for later
    calls): every emitted batch is valid when emitted, no op is emitted twice while in flight, and
    random failures / retries still end every op in one terminal state."""
    graph = DependencyGraph(ops)
    batcher = Batcher(graph, limits)
    rounds = 0
    while not graph.is_finished:
        rounds += 1
        assert rounds < 20_000
        accounts = None if rnd.random() < 0.7 else [rnd.choice(ACCOUNTS)]
        batches = batcher.next_batches(accounts=accounts, max_per_account=cap, flush=rnd.random() < 0.8)
        if not batches:
            batches = batcher.next_batches(max_per_account=cap)
        assert batches or graph.is_finished
        per_account: dict[str, int] = {}
        for batch in batches:
            per_account[batch.account_id] = per_account.get(batch.account_id, 0) + 1
            _check_one_batch(batch, graph, limits)
            batcher.render(batch)
        assert all(n <= cap for n in per_account.values())
        for batch in batches:
            for op in batch.ops:
                if graph.state(op.op_id) is not OpState.IN_FLIGHT:
                    continue
                roll = rnd.random()
                if any(graph.state(d) is not OpState.SUCCEEDED for d in op.dependencies):
                    graph.requeue(op.op_id)
                elif roll < 0.05:
                    graph.mark_failed(op.op_id, "boom")
                elif roll < 0.15:
                    graph.requeue(op.op_id)
                else:
                    graph.mark_succeeded(op.op_id, _result_for(op))
    assert all(graph.state(op.op_id) in (OpState.SUCCEEDED, OpState.FAILED, OpState.SKIPPED) for op in ops)


def test_held_batches_are_emitted_before_packing_again_and_dropped_when_stale() -> None:
    """200 chains asked for one batch at a time: one packing pass serves many calls."""
    ops = [
        o
        for i in range(200)
        for o in [
            Operation(
                op_id=f"c{i}",
                method="POST",
                path="act_1/campaigns",
                account_id="act_1",
                kind=OpKind.CREATE_CAMPAIGN,
            ),
            Operation(
                op_id=f"s{i}",
                method="POST",
                path="act_1/adsets",
                account_id="act_1",
                kind=OpKind.CREATE_ADSET,
                params={"campaign_id": Ref(f"c{i}")},
            ),
            Operation(
                op_id=f"a{i}",
                method="POST",
                path="act_1/ads",
                account_id="act_1",
                kind=OpKind.CREATE_AD,
                params={"adset_id": Ref(f"s{i}")},
            ),
        ]
    ]
    graph = DependencyGraph(ops)
    batcher = Batcher(graph)
    (first,) = batcher.next_batches(max_per_account=1)
    assert len(first) == 30  # ten chains, ten ads
    assert batcher._held.get("act_1")  # complete batches packed beyond the cap wait here
    # an op of a held batch is skipped meanwhile: that batch is dropped, its other ops repacked
    held_op = batcher._held["act_1"][0].ops[0]
    graph.mark_skipped(held_op.op_id, "cancelled")
    emitted: set[str] = set(first.op_ids)
    for op in first.ops:
        graph.mark_succeeded(op.op_id, {"id": op.op_id})
    calls = 0
    while True:
        batches = batcher.next_batches(max_per_account=1)
        if not batches:
            break
        calls += 1
        (batch,) = batches
        _check_one_batch(batch, graph, BatchLimits())
        assert not emitted & set(batch.op_ids)
        emitted.update(batch.op_ids)
        for op in batch.ops:
            graph.mark_succeeded(op.op_id, {"id": op.op_id})
    assert graph.is_finished
    assert len(emitted) == len(ops) - 3  # the skipped campaign and its two dependents
    assert calls == 19  # 567 ops left: 18 held batches of ten chains, then the nine around the stale op


def _check_one_batch(batch: PlannedBatch, graph: DependencyGraph, limits: BatchLimits) -> None:
    """The rules of one emitted batch: limits, one account, one ad set per campaign, and every
    dependency either succeeded already or earlier in this batch under a batch name."""
    assert 1 <= len(batch) <= limits.max_ops
    assert batch.ad_creates(limits.ad_create_kinds) <= limits.max_ad_creates
    assert {op.account_id for op in batch.ops} == {batch.account_id}
    campaigns = [_campaign_of(op, graph) for op in batch.ops if op.kind in limits.adset_kinds]
    campaigns = [c for c in campaigns if c is not None]
    assert len(campaigns) == len(set(campaigns))
    seen: set[str] = set()
    for op in batch.ops:
        assert graph.state(op.op_id) is OpState.IN_FLIGHT
        for dep in op.dependencies:
            if dep in seen:
                assert dep in batch.names
            else:
                assert graph.state(dep) is OpState.SUCCEEDED and dep not in batch.names
        seen.add(op.op_id)


def _campaign_of(op: Operation, graph: DependencyGraph) -> str | None:
    value = op.params.get("campaign_id")
    if isinstance(value, Ref):
        if graph.state(value.op_id) is OpState.SUCCEEDED:
            return str(graph.resolve_ref(value))
        return f"ref:{value.op_id}"
    return None if value is None else str(value)

"""Exact packing layouts: the batches the planner makes for small shapes, spelled out.

Why: the other planning tests assert rules and bounds, which a change of packing could still meet while
making different batches. These pin the layouts themselves (written down from the planner when
``Batcher._pack_account`` became :class:`~bulk_engine.planning.packing.AccountPacker`, and checked
identical to the old function on ~700 shapes), so a change of packing shows up here as a diff to read.
Where an op has several unplaced parents the planner visits ``Operation.dependencies`` (a frozenset) in
hash order, which varies with ``PYTHONHASHSEED`` and can change a layout; these shapes make the same
batches under any seed tried (0-9).
"""

from __future__ import annotations

import random
from collections import Counter

from test_planning_batcher import mk, tree

from bulk_engine.planning.batcher import Batcher, BatchLimits, PlannedBatch, plan_all
from bulk_engine.planning.graph import DependencyGraph, Operation, OpKind, OpState
from bulk_engine.protocol.images import IMAGE_HASH_PATH, Upload
from bulk_engine.protocol.refs import Ref

MB = 1024 * 1024


def layout(batches: list[PlannedBatch]) -> list[str]:
    return [f"{b.account_id}: {' '.join(b.op_ids)}" for b in batches]


def test_shuffled_trees_meet_again_in_pairs() -> None:
    ops = [o for i in range(8) for o in tree(i)]
    random.Random(7).shuffle(ops)
    assert layout(plan_all(ops, BatchLimits(max_ops=10, max_ad_creates=2))) == [
        "act_1: c7 s7 cr7 a7 cr2 c2 s2 a2",
        "act_1: cr5 c5 s5 a5 c0 s0 cr0 a0",
        "act_1: cr3 c3 s3 a3 c6 s6 cr6 a6",
        "act_1: cr1 c1 s1 a1 c4 s4 cr4 a4",
    ]


def test_trees_of_two_accounts_split_when_a_chain_does_not_fit() -> None:
    ops = [o for i in range(6) for o in tree(i, "act_1" if i % 2 else "act_2")]
    assert layout(plan_all(ops, BatchLimits(max_ops=7))) == [
        "act_2: c0 s0 cr0 a0 c2 s2",
        "act_2: cr2 c4 s4 cr4 a4",
        "act_1: c1 s1 cr1 a1 c3 s3",
        "act_1: cr3 c5 s5 cr5 a5",
        "act_2: a2",
        "act_1: a3",
    ]


def test_adsets_of_one_campaign_spread_and_updates_fill_the_room() -> None:
    ops = [mk(f"s{i}", OpKind.CREATE_ADSET, campaign_id=str(i % 3)) for i in range(9)]
    ops += [mk(f"u{i}") for i in range(6)]
    assert layout(plan_all(ops, BatchLimits(max_ops=5))) == [
        "act_1: s0 s1 s2 u0 u1",
        "act_1: s3 s4 s5 u2 u3",
        "act_1: s6 s7 s8 u4 u5",
    ]


def test_ads_go_first_and_updates_fill_the_room() -> None:
    ops = [mk(f"u{i}") for i in range(12)] + [mk(f"a{i}", OpKind.CREATE_AD) for i in range(7)]
    assert layout(plan_all(ops, BatchLimits(max_ops=6, max_ad_creates=2))) == [
        "act_1: a0 a1 u0 u1 u2 u3",
        "act_1: a2 a3 u4 u5 u6 u7",
        "act_1: a4 a5 u8 u9 u10 u11",
        "act_1: a6",
    ]


def test_a_shuffled_chain_is_cut_only_where_batches_are_full() -> None:
    chain = [mk("k0")] + [mk(f"k{i}", ref=Ref(f"k{i - 1}")) for i in range(1, 12)]
    assert layout(plan_all(random.Random(3).sample(chain, 12), BatchLimits(max_ops=5))) == [
        "act_1: k0 k1 k2 k3 k4",
        "act_1: k5 k6 k7 k8 k9",
        "act_1: k10 k11",
    ]


def test_deep_ancestors_are_not_pulled_beyond_the_depth_bound() -> None:
    deep = [mk("d0", OpKind.CREATE_CAMPAIGN)]
    deep += [mk(f"d{i}", OpKind.CREATE_CREATIVE, p=Ref(f"d{i - 1}")) for i in range(1, 6)]
    deep.append(mk("ad", OpKind.CREATE_AD, p=Ref("d5")))
    assert layout(plan_all(deep[::-1], BatchLimits(max_ops=4))) == ["act_1: d0 d1 d2 d3", "act_1: d4 d5 ad"]


def _image(n: int, size: int) -> Operation:
    return Operation(
        op_id=f"img{n}",
        method="POST",
        path="act_1/adimages",
        account_id="act_1",
        kind=OpKind.CREATE_IMAGE,
        upload=Upload(f"{n:032x}", size, f"{n}.png", "/p.png"),
    )


def test_images_share_the_byte_budget_with_their_creatives() -> None:
    ops = [
        op
        for n in range(6)
        for op in (
            _image(n, 3 * MB),
            mk(f"cr{n}", OpKind.CREATE_CREATIVE, link_data={"image_hash": Ref(f"img{n}", IMAGE_HASH_PATH)}),
        )
    ]
    ops.append(_image(9, 40 * MB))
    assert layout(plan_all(ops, BatchLimits(max_upload_bytes=8 * MB))) == [
        "act_1: img0 cr0 img1 cr1",
        "act_1: img2 cr2 img3 cr3",
        "act_1: img4 cr4 img5 cr5",
        "act_1: img9",
    ]


def test_capped_calls_hold_flush_and_drop_stale_batches() -> None:
    """One or two batches per call, some calls without flush, a campaign cancelled after the first."""
    graph = DependencyGraph([o for i in range(10) for o in tree(i)] + [mk(f"u{i}") for i in range(9)])
    batcher = Batcher(graph, BatchLimits(max_ops=7, max_ad_creates=2))
    calls: list[list[str]] = []
    while not graph.is_finished:
        batches = batcher.next_batches(max_per_account=1 + len(calls) % 2, flush=len(calls) % 3 != 1)
        calls.append(layout(batches))
        if len(calls) == 1:
            graph.mark_skipped("c6", "cancelled")
        for batch in batches:
            for op in batch.ops:
                if graph.state(op.op_id) is OpState.IN_FLIGHT:
                    graph.mark_succeeded(op.op_id, {"id": op.op_id})
    assert calls == [
        ["act_1: c0 s0 cr0 a0 c1 s1 u0"],
        ["act_1: cr1 a1 c2 s2 cr2 a2 cr6", "act_1: c3 s3 cr3 a3 c4 s4 u1"],
        ["act_1: cr4 a4 c5 s5 cr5 a5 u2"],
        ["act_1: c7 s7 cr7 a7 c8 s8 u3", "act_1: cr8 c9 s9 cr9 a9 u4 u5"],
        [],
        ["act_1: a8 u6 u7 u8"],
    ]


def test_thousand_trees_in_order_and_shuffled() -> None:
    ops = [o for i in range(1000) for o in tree(i)]
    batches = plan_all(ops)
    assert Counter(len(b) for b in batches) == {40: 100}
    assert batches[0].op_ids[:8] == ("c0", "s0", "cr0", "a0", "c1", "s1", "cr1", "a1")
    random.Random(7).shuffle(ops)
    batches = plan_all(ops)
    assert sorted(Counter(len(b) for b in batches).items()) == [
        (4, 1),
        (8, 1),
        (24, 1),
        (28, 2),
        (32, 1),
        (36, 1),
        (40, 96),
    ]
    assert sum(len(b.names) for b in batches) == 3000  # every reference resolved inside its batch

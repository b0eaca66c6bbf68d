"""Packing image uploads: several per batch within ``BatchLimits.max_upload_bytes``; an oversized one alone;
the creative that uses an upload's hash rides in its batch (``{result=…:$.images.*.hash}``)."""

from __future__ import annotations

import pytest

from bulk_engine.planning.batcher import BatchLimits, plan_all, upload_bytes
from bulk_engine.planning.graph import Operation, OpKind
from bulk_engine.protocol.images import IMAGE_HASH_PATH, Upload
from bulk_engine.protocol.refs import Ref

ACT = "act_1"
MB = 1024 * 1024


def upload(n: int, size: int, path: str | None = "/img.png") -> Operation:
    md5 = f"{n:032x}"
    return Operation(
        op_id=f"img:{n}",
        method="POST",
        path=f"{ACT}/adimages",
        account_id=ACT,
        kind=OpKind.CREATE_IMAGE,
        upload=Upload(md5, size, f"{n}.png", path),
    )


def creative(n: int) -> Operation:
    link = {"link": "https://example.com", "image_hash": Ref(f"img:{n}", IMAGE_HASH_PATH)}
    return Operation(
        op_id=f"cr:{n}",
        method="POST",
        path=f"{ACT}/adcreatives",
        account_id=ACT,
        kind=OpKind.CREATE_CREATIVE,
        params={"object_story_spec": {"page_id": "1", "link_data": link}},
    )


@pytest.mark.parametrize("budget_mb", [8, 20, 32])
def test_uploads_share_batches_within_the_byte_budget(budget_mb: int) -> None:
    ops = [upload(n, 3 * MB) for n in range(30)]
    batches = plan_all(ops, BatchLimits(max_upload_bytes=budget_mb * MB))
    assert sum(len(b) for b in batches) == 30
    for batch in batches:
        assert sum(upload_bytes(op) for op in batch.ops) <= budget_mb * MB
    per_batch = budget_mb // 3
    assert len(batches) == -(-30 // per_batch)  # as few requests as the budget allows


def test_an_upload_larger_than_the_budget_goes_alone() -> None:
    ops = [upload(0, 40 * MB), upload(1, 1 * MB), upload(2, 1 * MB)]
    batches = plan_all(ops, BatchLimits(max_upload_bytes=32 * MB))
    sizes = sorted(tuple(op.op_id for op in b.ops) for b in batches)
    assert ("img:0",) in sizes and len(batches) == 2


def test_base64_uploads_count_their_encoded_size() -> None:
    inline = upload(0, 3 * MB, path=None)
    assert upload_bytes(inline) == 4 * MB
    assert upload_bytes(upload(1, 3 * MB)) == 3 * MB


def test_creatives_ride_with_their_upload_and_files_are_attached() -> None:
    ops = [op for n in range(5) for op in (upload(n, 1000), creative(n))]
    [batch] = plan_all(ops)
    wire = batch.to_batch_ops(lambda ref: "resolved")
    assert len(wire) == 10
    uploads = [op for op in wire if op.relative_url.endswith("adimages")]
    assert [op.attached_files for op in uploads] == [(f"img_{n:032x}",) for n in range(5)]
    assert all(op.omit_response_on_success is False for op in uploads)  # referenced: their answer is needed
    creatives = [op for op in wire if op.relative_url.endswith("adcreatives")]
    texts = [op.params["object_story_spec"]["link_data"]["image_hash"] for op in creatives]
    names = [batch.names[f"img:{n}"] for n in range(5)]  # op ids with ":" get positional batch names
    assert texts == [f"{{result={name}:$.images.*.hash}}" for name in names]

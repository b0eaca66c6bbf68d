"""Ads from a CSV (issue 15.5): rows grouped into campaign → ad set → ad trees, images uploaded once per
content, every bad row refused at the CSV's file:line before any call, the same sheet never creating twice."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops_support import GEO, PAGE, write
from pngs import png

from bulk_engine.operations import CompileContext, JobFileError, load_job, run_job
from bulk_engine.persistence import MemoryJournal
from bulk_engine.persistence.keys import strip_key

TEMPLATES: dict[str, Any] = {
    "page_id": PAGE,
    "campaign": {"objective": "OUTCOME_TRAFFIC", "special_ad_categories": []},
    "ad_set": {
        "billing_event": "IMPRESSIONS",
        "optimization_goal": "LINK_CLICKS",
        "daily_budget": 1000,
        "targeting": GEO,
    },
}
# Ads Manager's column names (matched case-insensitively), one row per ad
ADS_MANAGER = ["Campaign Name", "Ad Set Name", "Ad Name", "Body", "Title", "Website URL", "Call to Action"]


def sheet(folder: Path, header: list[str], rows: list[list[str]], name: str = "ads.csv") -> Path:
    path = folder / name
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def csv_job(folder: Path, account: str, job_id: str = "sheet-1", **ads_csv: Any) -> Path:
    task = {"type": "create", "key": "sheet", "ads_csv": {"file": "ads.csv", **TEMPLATES, **ads_csv}}
    job = {"version": 1, "job_id": job_id, "account_id": account, "tasks": [task]}
    return write(folder / "job.yaml", yaml.safe_dump(job, sort_keys=False))


def problems(job: Path) -> list[str]:
    with pytest.raises(JobFileError) as caught:
        load_job(job)
    return [str(issue) for issue in caught.value.issues]


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def posts(sim: Any, edge: str) -> list[Any]:
    return [c for c in sim.server.core.calls if c.method == "POST" and c.path.endswith(f"/{edge}")]


async def test_rows_group_into_one_tree_per_campaign_and_one_ad_set_per_campaign_and_ad_set(
    start_sim: Any, tmp_path: Path
) -> None:
    rows = [
        ["Spring", "US", "Hero", "Spring is here", "Save 20%", "https://example.com/a", "Shop Now"],
        ["Spring", "US", "Alt", "Still spring", "", "https://example.com/b", ""],
        ["Spring", "CA", "Hero", "Spring in Canada", "", "https://example.com/c", "LEARN_MORE"],
        ["Summer", "US", "Hero", "Summer", "Hot", "https://example.com/d", "sign up"],
    ]
    header = [*ADS_MANAGER, "Countries", "Ad Set Daily Budget"]
    sheet(
        tmp_path, header, [[*r, "CA" if r[1] == "CA" else "", "2500" if r[1] == "CA" else ""] for r in rows]
    )
    sim = await start_sim()
    report = await sim.run(load_job(csv_job(tmp_path, sim.act)))
    assert report.ok and report.counts == {"succeeded": 3 + 2 + 4 + 4, "failed": 0, "skipped": 0}

    campaigns = {strip_key(c.data["name"]): c for c in sim.nodes("campaign")}
    assert set(campaigns) == {"Spring", "Summer"}
    spring = sim.tree(campaigns["Spring"].id)
    by_name = {a[0]: a for a in spring["adsets"]}
    assert set(by_name) == {"US", "CA"}
    assert [ad[0] for ad in by_name["US"][4]] == ["Alt", "Hero"]
    ca = next(s for s in sim.children(campaigns["Spring"].id, "adset") if strip_key(s.data["name"]) == "CA")
    assert int(ca.data["daily_budget"]) == 2500  # the row's column overrides the template
    assert ca.data["targeting"]["geo_locations"] == {"countries": ["CA"]}
    assert spring["status"] == "PAUSED" and spring["objective"] == "OUTCOME_TRAFFIC"

    assert len(sim.nodes("adcreative")) == 4  # one creative per row
    hero = next(
        c.data["object_story_spec"]["link_data"]
        for c in sim.nodes("adcreative")
        if c.data["object_story_spec"]["link_data"]["link"] == "https://example.com/a"
    )
    assert hero == {
        "link": "https://example.com/a",
        "message": "Spring is here",
        "name": "Save 20%",
        "call_to_action": {"type": "SHOP_NOW"},
    }
    details = report.task("sheet").details["ads_csv"]
    assert {k: details[k] for k in ("rows", "campaigns", "ad_sets", "ads")} == {
        "rows": 4,
        "campaigns": 2,
        "ad_sets": 3,
        "ads": 4,
    }
    ids = {o.op_id: o.graph_id for o in report.outcomes}
    assert sorted(details["ads_by_line"]) == ["2", "3", "4", "5"]  # the report names every ad by its row
    ad_names = {strip_key(sim.node(ids[op]).data["name"]) for op in details["ads_by_line"].values()}
    assert ad_names == {"Hero", "Alt"}


async def test_200_pngs_from_a_csv_upload_each_distinct_content_once(start_sim: Any, tmp_path: Path) -> None:
    distinct, total = 160, 200  # 40 rows repeat another row's bytes under another file name
    (tmp_path / "img").mkdir()
    rows = []
    for i in range(total):
        (tmp_path / "img" / f"p{i}.png").write_bytes(png(3, 2, seed=i % distinct))
        rows.append(
            [f"C{i % 4}", f"S{i % 5}", f"Ad {i}", f"Text {i}", f"https://example.com/{i}", f"img/p{i}.png"]
        )
    sheet(tmp_path, ["campaign_name", "ad_set_name", "ad_name", "primary_text", "link", "image_file"], rows)
    sim = await start_sim(quota_override=100_000)
    report = await sim.run(load_job(csv_job(tmp_path, sim.act)))
    lookups = 4  # adimages?hashes=[...] of 50 hashes for the 160 contents
    assert report.counts == {
        "succeeded": lookups + distinct + 4 + 4 * 5 + 2 * total,
        "failed": 0,
        "skipped": 0,
    }
    details = report.task("sheet").details
    assert details["images"] == {
        "keys": total,
        "uploaded": distinct,
        "reused": 0,
        "deduplicated": total - distinct,
        "by_url": 0,
        "upload_failures": 0,
    }
    assert details["ads_csv"]["ads"] == total and details["ads_csv"]["ad_sets"] == 20
    assert len(posts(sim, "adimages")) == distinct and len(sim.nodes("adimage")) == distinct
    hashes = {c.data["object_story_spec"]["link_data"]["link"]: c.data for c in sim.nodes("adcreative")}
    for i in range(total):
        link = hashes[f"https://example.com/{i}"]["object_story_spec"]["link_data"]
        assert link["image_hash"] == md5_of(tmp_path / "img" / f"p{i}.png")
        assert "image" not in link
    assert len(sim.nodes("ad")) == total


@pytest.mark.parametrize(
    ("header", "row", "expected"),
    [
        (
            ["Campaign Name", "Ad Set Name", "Body", "Website URL"],
            ["Spring", "US", "Hi", "https://example.com"],
            "ads.csv:1: tasks[0].ads_csv: the CSV has no ad_name column",
        ),
        (
            ADS_MANAGER,
            ["Spring", "US", "Hero", "Hi", "", "https://example.com", "Click Me"],
            'ads.csv:2: tasks[0].ads_csv.Call to Action = "Click Me": unknown call to action type',
        ),
        (
            ADS_MANAGER,
            ["Spring", "US", "Hero", "Hi", "", "example.com/spring", ""],
            'ads.csv:2: tasks[0].ads_csv.Website URL = "example.com/spring": a link must be an http(s) URL',
        ),
        (
            [*ADS_MANAGER, "Image File"],
            ["Spring", "US", "Hero", "Hi", "", "https://example.com", "", "img/nope.png"],
            'ads.csv:2: tasks[0].ads_csv.Image File = "img/nope.png": image file not found',
        ),
        (
            [*ADS_MANAGER, "Headline"],
            ["Spring", "US", "Hero", "Hi", "", "https://example.com", "", ""],
            "ads.csv:1: tasks[0].ads_csv = \"Headline\": columns 'Title' and 'Headline' both mean headline",
        ),
        (
            [*ADS_MANAGER, "Colour"],
            ["Spring", "US", "Hero", "Hi", "", "https://example.com", "", "blue"],
            'ads.csv:1: tasks[0].ads_csv = "Colour": unknown column',
        ),
        (
            [*ADS_MANAGER, "Video File"],
            ["Spring", "US", "Hero", "Hi", "", "https://example.com", "WATCH_MORE", "clips/nope.mp4"],
            'ads.csv:2: tasks[0].ads_csv.Video File = "clips/nope.mp4": video file not found',
        ),
    ],
    ids=[
        "missing-column",
        "unknown-cta",
        "bad-link",
        "missing-file",
        "same-column-twice",
        "unknown-column",
        "missing-video",
    ],
)
def test_a_bad_row_is_refused_at_the_csv_file_and_line(
    tmp_path: Path, header: list[str], row: list[str], expected: str
) -> None:
    sheet(tmp_path, header, [row])
    found = problems(csv_job(tmp_path, "act_1000000001"))
    assert any(expected in p for p in found), found
    if "Call to Action" in expected:
        assert any("[Graph code 100/1373054]" in p for p in found)


def test_rows_of_one_ad_set_that_disagree_are_refused_naming_both_lines(tmp_path: Path) -> None:
    header = [*ADS_MANAGER, "Ad Set Daily Budget", "Optimization Goal"]
    base = ["Hi", "", "https://example.com", ""]
    sheet(
        tmp_path,
        header,
        [
            ["Spring", "US", "A", *base, "1500", "LINK_CLICKS"],
            ["Spring", "US", "B", *base, "", "link_clicks"],  # empty, and the same value: fine
            ["Spring", "US", "C", *base, "2500", ""],
            ["Spring", "CA", "D", *base, "2500", ""],  # another ad set: its own budget
            ["Spring", "US", "A", *base, "", ""],
        ],
    )
    found = problems(csv_job(tmp_path, "act_1000000001"))
    assert len(found) == 2, found
    assert (
        "ads.csv:4: tasks[0].ads_csv.Ad Set Daily Budget = \"2500\": ad set 'US' has ad_set_daily_budget "
        in found[0]
    )
    assert "'1500' on line 2" in found[0] and "(rule ads_csv.conflict)" in found[0]
    assert 'ads.csv:6: tasks[0].ads_csv.Ad Name = "A"' in found[1] and "(line 2)" in found[1]


def test_values_are_checked_by_the_create_rules_at_the_row_or_the_template(tmp_path: Path) -> None:
    header = ["campaign_name", "campaign_objective", "ad_set_name", "ad_name", "link", "ad_set_status"]
    sheet(
        tmp_path,
        [*header, "ad_set_daily_budget", "countries"],
        [
            ["Spring", "outcome_traffic", "US", "A", "https://example.com", "RUNNING", "20.00", "USA"],
            ["Spring", "", "CA", "B", "https://example.com", "", "50", ""],  # under the $1.00 minimum
            ["Fall", "", "US", "C", "https://example.com", "", "", ""],
        ],
    )
    found = problems(csv_job(tmp_path, "act_1000000001", campaign={"special_ad_categories": []}))
    text = "\n".join(found)
    assert (
        'ads.csv:2: tasks[0].ads_csv.ad_set_daily_budget = "20.00": must be a whole number of cents' in text
    )
    assert 'ads.csv:2: tasks[0].ads_csv.countries = "USA": must be two-letter country codes' in text
    assert 'ads.csv:2: tasks[0].ads_csv.ad_set_status = "RUNNING": must be one of: ACTIVE or PAUSED' in text
    assert (
        "ads.csv:3: tasks[0].ads_csv.ad_set_daily_budget = 50:" in text and "[Graph code 100/1885272]" in text
    )
    # no objective in the template and no cell: said at the campaign's first row
    assert "ads.csv:4: tasks[0].ads_csv.campaign_name = \"Fall\": campaign 'Fall' has no objective" in text
    assert len(found) == 5, text


def test_a_template_problem_is_said_once_in_the_job_file(tmp_path: Path) -> None:
    sheet(tmp_path, ["campaign_name", "ad_set_name", "ad_name", "link"], [["A", "US", "x", "https://e.com"]])
    job = csv_job(
        tmp_path, "act_1000000001", ad_set={**TEMPLATES["ad_set"], "bid_strategy": "LOWEST", "name": "x"}
    )
    found = problems(job)
    assert any("job.yaml:" in p and "tasks[0].ads_csv.ad_set.bid_strategy" in p for p in found), found
    assert any("tasks[0].ads_csv.ad_set.name" in p and "ads_csv.template" in p for p in found), found


async def test_the_same_csv_run_twice_with_a_journal_creates_nothing_twice(
    start_sim: Any, tmp_path: Path
) -> None:
    (tmp_path / "img").mkdir()
    rows = []
    for i in range(6):
        (tmp_path / "img" / f"p{i}.png").write_bytes(png(2, 2, seed=i % 4))
        rows.append([f"C{i % 2}", "All", f"Ad {i}", f"https://example.com/{i}", f"img/p{i}.png"])
    sheet(tmp_path, ["campaign_name", "ad_set_name", "ad_name", "link", "image"], rows)
    sim = await start_sim()
    journal = MemoryJournal()
    reports = []
    for _ in range(2):
        engine = sim.engine()
        engine.journal = journal
        async with engine:
            reports.append(await run_job(engine, load_job(csv_job(tmp_path, sim.act))))
    first, second = reports
    assert first.ok and second.ok
    assert {o.op_id for o in first.outcomes} == {o.op_id for o in second.outcomes}  # same sheet, same ops
    assert (len(sim.nodes("campaign")), len(sim.nodes("adset")), len(sim.nodes("ad"))) == (2, 2, 6)
    assert len(sim.nodes("adcreative")) == 6 and len(sim.nodes("adimage")) == 4
    assert len(posts(sim, "ads")) == 6 and len(posts(sim, "adimages")) == 4  # nothing sent twice


async def test_a_row_added_later_creates_only_its_own_ad(start_sim: Any, tmp_path: Path) -> None:
    """Op ids come from names, not row positions: a new row in the middle does not re-key the others, so a
    re-run (here without a journal: the server is asked by key) finds them and creates only the new ad."""
    header = ["campaign_name", "ad_set_name", "ad_name", "link"]
    rows = [["Spring", "US", f"Ad {i}", f"https://example.com/{i}"] for i in range(3)]
    sheet(tmp_path, header, rows)
    sim = await start_sim()
    assert (await sim.run(load_job(csv_job(tmp_path, sim.act)))).ok
    sheet(tmp_path, header, [rows[0], ["Spring", "US", "New", "https://example.com/new"], *rows[1:]])
    again = await sim.run(load_job(csv_job(tmp_path, sim.act)))
    assert again.ok
    assert sorted(strip_key(a.data["name"]) for a in sim.nodes("ad")) == ["Ad 0", "Ad 1", "Ad 2", "New"]
    assert len(sim.nodes("campaign")) == 1 and len(sim.nodes("adset")) == 1


async def test_video_rows_upload_the_video_and_use_it_in_video_data(start_sim: Any, tmp_path: Path) -> None:
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "teaser.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(4096))
    (tmp_path / "media" / "thumb.png").write_bytes(png(2, 2, seed=9))
    header = [
        "Campaign Name",
        "Ad Set Name",
        "Ad Name",
        "Video File",
        "Image File",
        "Title",
        "Link",
        "Call to Action",
    ]
    sheet(
        tmp_path,
        header,
        [
            [
                "Spring",
                "US",
                "Teaser",
                "media/teaser.mp4",
                "media/thumb.png",
                "Watch",
                "https://e.com",
                "WATCH_MORE",
            ],
            ["Spring", "US", "Teaser 2", "media/teaser.mp4", "", "Again", "https://e.com/2", "LEARN_MORE"],
        ],
    )
    sim = await start_sim()
    report = await sim.run(load_job(csv_job(tmp_path, sim.act)))
    assert report.ok, [o for o in report.outcomes if o.state.value != "succeeded"]
    videos = sim.nodes("advideo") if sim.nodes("advideo") else sim.nodes("video")
    assert len(videos) == 1  # one file, one upload
    datas = {
        strip_key(c.data["name"]): c.data["object_story_spec"]["video_data"] for c in sim.nodes("adcreative")
    }
    assert datas["Teaser"]["video_id"] == datas["Teaser 2"]["video_id"] == videos[0].id
    assert datas["Teaser"]["image_hash"] == md5_of(tmp_path / "media" / "thumb.png")
    assert datas["Teaser"]["title"] == "Watch"
    assert datas["Teaser"]["call_to_action"] == {"type": "WATCH_MORE", "value": {"link": "https://e.com"}}


async def test_a_dry_run_validates_the_campaigns_and_skips_what_has_no_parent_id(
    start_sim: Any, tmp_path: Path
) -> None:
    sheet(tmp_path, ["campaign_name", "ad_set_name", "ad_name", "link"], [["A", "US", "x", "https://e.com"]])
    sim = await start_sim()
    report = await sim.run(load_job(csv_job(tmp_path, sim.act)), CompileContext(validate_only=True))
    # the campaign and the creative are validated by Graph; the ad set and the ad need their parents' ids
    assert report.counts == {"succeeded": 2, "failed": 0, "skipped": 2}
    assert sim.nodes("campaign") == [] and sim.nodes("ad") == []
    assert all("dry run" in (o.reason or "") for o in report.outcomes if o.state.value == "skipped")


def test_the_documented_example_is_a_valid_job(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "job-files.md").read_text(encoding="utf-8")
    section = text.split("## Ads from a CSV\n", 1)[1]
    job = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    rows = section.split("```csv\n", 1)[1].split("```", 1)[0]
    (tmp_path / "img").mkdir()
    for n, name in enumerate(("hero", "alt")):
        (tmp_path / "img" / f"{name}.png").write_bytes(png(seed=n))
    write(tmp_path / "ads.csv", rows)
    spec = load_job(write(tmp_path / "job.yaml", f"version: 1\naccount_id: act_1000000001\n{job}"))
    kinds = spec.summarize_kinds()
    assert (kinds["create_campaign"], kinds["create_adset"], kinds["create_ad"], kinds["create_image"]) == (
        1,
        2,
        3,
        2,
    )


def test_ignored_columns_are_read_past_and_a_value_under_no_column_is_refused(tmp_path: Path) -> None:
    header = ["campaign_name", "ad_set_name", "ad_name", "link", "Notes", ""]
    good = ["A", "US", "x", "https://e.com", "check the copy", ""]
    sheet(tmp_path, header, [good, ["# a comment row"], ["A", "US", "y", "https://e.com/y", "", "stray"]])
    found = problems(csv_job(tmp_path, "act_1000000001", ignore_columns=["notes"]))
    assert len(found) == 1 and 'ads.csv:4: tasks[0].ads_csv = "stray": a value under no column' in found[0], (
        found
    )
    sheet(tmp_path, header, [good])
    assert (
        load_job(csv_job(tmp_path, "act_1000000001", ignore_columns=["Notes"])).summarize_kinds()["create_ad"]
        == 1
    )


def test_the_job_fingerprint_covers_the_sheet_and_the_files_it_names(tmp_path: Path) -> None:
    """A journal refuses to resume a job whose sheet or images changed: both are in the fingerprint."""
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(png(seed=1))
    header = ["campaign_name", "ad_set_name", "ad_name", "link", "image"]
    sheet(tmp_path, header, [["A", "US", "x", "https://e.com", "img/a.png"]])
    job = csv_job(tmp_path, "act_1000000001")
    assert load_job(job).tasks[0].input_files() == ["ads.csv", "img/a.png"]
    first = load_job(job).fingerprint()
    assert load_job(job).fingerprint() == first
    (tmp_path / "img" / "a.png").write_bytes(png(seed=2))
    changed_image = load_job(job).fingerprint()
    sheet(tmp_path, header, [["A", "US", "x", "https://e.com/2", "img/a.png"]])
    assert len({first, changed_image, load_job(job).fingerprint()}) == 3

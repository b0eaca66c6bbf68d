"""Job files: loading, located errors, fingerprints, deterministic lazy compilation, the published schema."""

from __future__ import annotations

import itertools
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ops_support import PAGE, campaign, creative, simple_tree, tree_job, write

from bulk_engine import JobValidationError
from bulk_engine.operations import (
    CompileContext,
    JobFileError,
    JobSpec,
    job_schema,
    load_job,
    parse_job,
)
from bulk_engine.operations.schema import render_schema

ROOT = Path(__file__).resolve().parents[2]

JOB_YAML = """\
version: 1
job_id: spring
account_id: act_1000000001
tasks:
  - type: create
    creatives:
      hero:
        object_story_spec:
          page_id: "2000000001"
          link_data: {link: "https://example.com", message: Hi}
    campaigns:
      - name: Spring
        objective: OUTCOME_TRAFFIC
        special_ad_categories: []
        daily_budget: 5000
        ad_sets:
          - name: US
            billing_event: IMPRESSIONS
            daily_budget: 1000
            targeting: {geo_locations: {countries: [US]}}
            ads:
              - {name: Hero, creative: hero}
"""


def errors_of(path: Path) -> JobFileError:
    with pytest.raises(JobFileError) as caught:
        load_job(path)
    return caught.value


def test_rule_error_names_file_line_field_value_rule_and_graph_code(tmp_path: Path) -> None:
    path = write(tmp_path / "spring.yaml", JOB_YAML)
    err = errors_of(path)
    assert isinstance(err, JobValidationError)
    [issue] = err.issues
    assert issue.file == str(path)
    assert issue.line == 19  # the ad set's daily_budget line
    assert issue.field_path == "tasks[0].campaigns[0].ad_sets[0].daily_budget"
    assert issue.value == 1000
    assert issue.rule == "budget.campaign_vs_adset"
    assert (issue.code, issue.subcode) == (100, 1885621)
    text = str(err)
    assert issue.column == 13
    assert f"{path}:19:13: tasks[0].campaigns[0].ad_sets[0].daily_budget = 1000:" in text
    assert "budget.campaign_vs_adset" in text and "1885621" in text


def test_schema_errors_are_all_reported_with_lines(tmp_path: Path) -> None:
    text = JOB_YAML.replace("        daily_budget: 5000\n", "        colour: red\n").replace(
        "objective: OUTCOME_TRAFFIC", "objective: OUTCOME_TRAFIC"
    )
    text += "  - type: status\n    status: PAUSD\n    ids: ['1', 'x']\n  - type: bogus\n"
    err = errors_of(write(tmp_path / "bad.yaml", text))
    found = {i.field_path: i for i in err.issues}
    assert found["tasks[0].campaigns[0].objective"].line == 13
    assert found["tasks[0].campaigns[0].objective"].value == "OUTCOME_TRAFIC"
    assert "OUTCOME_TRAFFIC" in found["tasks[0].campaigns[0].objective"].message
    assert found["tasks[0].campaigns[0].colour"].rule == "schema.extra_forbidden"
    assert found["tasks[0].campaigns[0].colour"].line == 15
    assert found["tasks[1].status"].value == "PAUSD"
    assert found["tasks[1].status"].line == 24
    assert "type must be one of" in found["tasks[2]"].message
    assert found["tasks[2]"].line == 26
    assert len(err.issues) == 4  # rule checks run only once the schema passes


def test_missing_required_field_points_at_its_object(tmp_path: Path) -> None:
    text = JOB_YAML.replace("        special_ad_categories: []\n", "")
    [issue] = errors_of(write(tmp_path / "job.yaml", text)).issues
    assert issue.field_path == "tasks[0].campaigns[0].special_ad_categories"
    assert issue.line == 12  # the campaign starts there
    assert issue.rule == "schema.missing"
    assert "= " not in str(issue).split(": ", 1)[1].split(":")[0]  # no value printed for a missing field


def test_json_job_files_have_lines_too(tmp_path: Path) -> None:
    data = yaml.safe_load(JOB_YAML)
    path = write(tmp_path / "job.json", json.dumps(data, indent=2))
    [issue] = errors_of(path).issues
    assert issue.rule == "budget.campaign_vs_adset"
    lines = path.read_text().splitlines()
    assert issue.line is not None and '"daily_budget": 1000' in lines[issue.line - 1]


@pytest.mark.parametrize(
    ("name", "text", "rule", "line"),
    [
        ("syntax.yaml", "version: 1\ntasks:\n  - type: create\n    campaigns: [\n", "file.yaml", 5),
        ("dupe.yaml", "version: 1\ntasks: []\ntasks: []\n", "file.duplicate_key", 3),
        ("broken.json", '{"version": 1,\n "tasks": [}\n', "file.json", 2),
        ("list.yaml", "- 1\n- 2\n", "job.type", 1),
    ],
)
def test_unparsable_files(tmp_path: Path, name: str, text: str, rule: str, line: int) -> None:
    [issue] = errors_of(write(tmp_path / name, text)).issues
    assert issue.rule == rule
    assert issue.line == line


def test_missing_file_is_a_validation_error(tmp_path: Path) -> None:
    [issue] = errors_of(tmp_path / "nope.yaml").issues
    assert issue.rule == "file.read"


def test_fingerprint_ignores_formatting_but_not_content(tmp_path: Path) -> None:
    valid = JOB_YAML.replace("        daily_budget: 5000\n", "")
    yaml_spec = load_job(write(tmp_path / "a.yaml", valid))
    json_spec = load_job(write(tmp_path / "b.json", json.dumps(yaml.safe_load(valid))))
    commented = load_job(write(tmp_path / "c.yaml", "# comment\n" + valid.replace("version: 1\n", "")))
    assert yaml_spec.fingerprint() == json_spec.fingerprint() == commented.fingerprint()
    changed = load_job(write(tmp_path / "d.yaml", valid.replace("name: US", "name: CA")))
    assert changed.fingerprint() != yaml_spec.fingerprint()


def test_fingerprint_covers_referenced_csv(tmp_path: Path) -> None:
    write(tmp_path / "ids.csv", "id\n1\n2\n")
    job = write(
        tmp_path / "job.yaml", "account_id: act_1\ntasks:\n  - {type: status, status: PAUSED, csv: ids.csv}\n"
    )
    first = load_job(job).fingerprint()
    write(tmp_path / "ids.csv", "id\n1\n3\n")
    assert load_job(job).fingerprint() != first


def test_compile_is_deterministic_and_ordered_parents_first() -> None:
    job = parse_job({"account_id": "act_1", **tree_job([simple_tree("A", ads=2, adsets=2)])})
    first = [(op.op_id, op.kind.value) for op in job.compile()]
    assert first == [(op.op_id, op.kind.value) for op in job.compile()]
    assert [op_id for op_id, _ in first] == [
        "t0/cr:c",
        "t0/c0",
        "t0/c0/s0",
        "t0/c0/s0/a0",
        "t0/c0/s0/a1",
        "t0/c0/s1",
        "t0/c0/s1/a0",
        "t0/c0/s1/a1",
    ]
    assert job.summarize_kinds() == {
        "create_creative": 1,
        "create_campaign": 1,
        "create_adset": 2,
        "create_ad": 4,
    }


def test_matrix_expansion_counts_and_names() -> None:
    creatives = {f"k{i}": creative(f"C{i}") for i in range(4)}
    camp = campaign(
        "Launch {n}",
        repeat=25,
        ad_set_matrix={
            "template": {
                "billing_event": "IMPRESSIONS",
                "optimization_goal": "LINK_CLICKS",
                "daily_budget": 1000,
            },
            "audiences": [
                {"name": country, "targeting": {"geo_locations": {"countries": [country]}}}
                for country in ("US", "CA", "MX")
            ],
            "creatives": list(creatives),
            "ad_name": "{campaign} / {audience} / {creative}",
        },
    )
    job = parse_job({"account_id": "act_1", **tree_job([camp], creatives)})
    ops = list(job.compile())
    kinds: dict[str, int] = {}
    for op in ops:
        kinds[op.kind.value] = kinds.get(op.kind.value, 0) + 1
    assert kinds == {"create_creative": 4, "create_campaign": 25, "create_adset": 75, "create_ad": 300}
    assert job.summarize_kinds() == kinds
    assert len({op.op_id for op in ops}) == len(ops)
    names = {op.params["name"] for op in ops if op.kind.value == "create_ad"}
    assert "Launch 7 / MX / k2" in names and len(names) == 300
    adset = next(op for op in ops if op.op_id == "t0/c0.3/m1")
    assert adset.params["name"] == "Launch 3 - CA"
    assert adset.params["targeting"] == {"geo_locations": {"countries": ["CA"]}}


def test_unknown_name_placeholder_is_refused() -> None:
    with pytest.raises(JobFileError) as caught:
        parse_job({"account_id": "act_1", **tree_job([campaign("Launch {week}")])})
    [issue] = caught.value.issues
    assert issue.rule == "name.placeholder" and issue.field_path == "tasks[0].campaigns[0].name"


def test_task_without_account_is_refused_before_compiling() -> None:
    job = parse_job(tree_job([campaign()]))
    with pytest.raises(JobFileError, match="no ad account"):
        list(job.compile())
    assert next(iter(job.compile(CompileContext(default_account_id="act_9")))).account_id == "act_9"


def test_duplicate_task_keys_are_refused() -> None:
    task = {"type": "status", "status": "PAUSED", "ids": ["1"], "key": "pause"}
    with pytest.raises(JobFileError, match="duplicate task key"):
        parse_job({"account_id": "act_1", "tasks": [task, task]})


def test_status_csv_of_a_million_rows_streams_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    with path.open("w") as handle:
        handle.write("id,current_status\n")
        for i in range(1_000_000):
            handle.write(f"{10_000_000 + i},{'ARCHIVED' if i % 100_000 == 5 else 'ACTIVE'}\n")
    spec = load_job(
        write(
            tmp_path / "job.yaml",
            "account_id: act_1\ntasks:\n  - {type: status, status: PAUSED, csv: ids.csv}\n",
        )
    )
    ctx = CompileContext()
    tracemalloc.start()
    try:
        ops = spec.compile(ctx)
        head = list(itertools.islice(ops, 1000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert head[0].op_id == "t0/L2:10000000" and head[0].params == {"status": "PAUSED"}
    assert peak < 20 * 1024 * 1024  # the whole file as operations would be hundreds of MB
    assert [s.op_id for s in ctx.skipped] == ["t0/L7:10000005"]  # ARCHIVED → PAUSED refused locally
    assert "only become DELETED" in (ctx.skipped[0].reason or "")


def test_csv_rows_are_validated_before_any_call(tmp_path: Path) -> None:
    write(tmp_path / "ids.csv", "id,status\n1,PAUSED\nabc,PAUSED\n3,SLEEPING\n")
    job = write(tmp_path / "job.yaml", "account_id: act_1\ntasks:\n  - {type: status, csv: ids.csv}\n")
    err = errors_of(job)
    assert [(i.file, i.line) for i in err.issues] == [
        (str(tmp_path / "ids.csv"), 3),
        (str(tmp_path / "ids.csv"), 4),
    ]
    assert "numeric" in err.issues[0].message and "SLEEPING" in err.issues[1].message


def test_published_schema_matches_the_models() -> None:
    published = (ROOT / "docs" / "job-schema.json").read_text(encoding="utf-8")
    assert published == render_schema(), "run: python -m bulk_engine.operations.schema"
    assert json.loads(published) == json.loads(json.dumps(job_schema()))


def test_schema_describes_task_types_and_enums() -> None:
    schema = job_schema()
    assert set(schema["$defs"]["CreateTask"]["properties"]) >= {
        "type",
        "campaigns",
        "creatives",
        "account_id",
    }
    objective = schema["$defs"]["CampaignSpec"]["properties"]["objective"]
    assert "OUTCOME_SALES" in objective["enum"]


# --- property: malformed job files are always rejected with field-level messages --------------------------------
_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
_VALID: dict[str, Any] = {"account_id": "act_1", **tree_job([simple_tree("A")])}
_PATHS = [
    ("tasks", 0, "campaigns", 0, "name"),
    ("tasks", 0, "campaigns", 0, "objective"),
    ("tasks", 0, "campaigns", 0, "special_ad_categories"),
    ("tasks", 0, "campaigns", 0, "ad_sets", 0, "daily_budget"),
    ("tasks", 0, "campaigns", 0, "ad_sets", 0, "targeting"),
    ("tasks", 0, "campaigns", 0, "ad_sets", 0, "ads", 0, "creative"),
    ("tasks", 0, "creatives", "c", "object_story_spec"),
    ("tasks", 0, "type"),
    ("tasks",),
    ("account_id",),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_PATHS), _VALUE)
def test_mutated_jobs_fail_only_with_job_validation_errors(path: tuple[Any, ...], value: Any) -> None:
    data = json.loads(json.dumps(_VALID))
    holder: Any = data
    for part in path[:-1]:
        holder = holder[part]
    holder[path[-1]] = value
    try:
        spec = parse_job(data)
    except JobFileError as err:
        assert err.issues and all(i.field_path and i.message for i in err.issues)
        return
    assert isinstance(spec, JobSpec)
    try:
        list(spec.compile())
    except JobFileError as err:  # e.g. no ad account any more
        assert err.issues


# Every task kind, each with its own fields mutated, removed, or joined by an unknown field.
_EVERY_KIND: dict[str, Any] = {
    "account_id": "act_1",
    "tasks": [
        tree_job([simple_tree("A")])["tasks"][0],
        {"type": "status", "status": "PAUSED", "ids": ["1", "2"], "level": "campaign"},
        {
            "type": "status",
            "status": "ARCHIVED",
            "selector": {"level": "adset", "name_prefix": "Old", "effective_status": ["PAUSED"]},
        },
        {
            "type": "copy",
            "source_ids": ["11"],
            "rename_options": {"rename_strategy": "DEEP_RENAME", "rename_prefix": "[Q3] "},
            "status_option": "PAUSED",
        },
        {"type": "copy", "source_ids": ["12"], "target_account_id": "act_2", "video_map": {"1": "2"}},
        {"type": "migrate", "campaign_ids": ["13"], "mode": "copy", "readiness": "apply"},
        {
            "type": "messages",
            "campaign": {"name": "M", "page_id": PAGE, "daily_budget": 500},
            "message": {"text": "Hi"},
            "subscription_tokens": ["tok-1", "tok-2"],
        },
    ],
}
_KIND_PATHS: list[tuple[Any, ...]] = [
    ("tasks", 1, "status"),
    ("tasks", 1, "ids"),
    ("tasks", 1, "ids", 0),
    ("tasks", 1, "level"),
    ("tasks", 2, "selector"),
    ("tasks", 2, "selector", "level"),
    ("tasks", 2, "selector", "effective_status"),
    ("tasks", 3, "source_ids"),
    ("tasks", 3, "source_ids", 0),
    ("tasks", 3, "rename_options"),
    ("tasks", 3, "rename_options", "rename_strategy"),
    ("tasks", 3, "status_option"),
    ("tasks", 4, "target_account_id"),
    ("tasks", 4, "video_map"),
    ("tasks", 5, "campaign_ids"),
    ("tasks", 5, "mode"),
    ("tasks", 5, "readiness"),
    ("tasks", 6, "campaign"),
    ("tasks", 6, "campaign", "daily_budget"),
    ("tasks", 6, "message"),
    ("tasks", 6, "subscription_tokens"),
    *(("tasks", i, "type") for i in range(1, 7)),
]


def _mutate(data: dict[str, Any], path: tuple[Any, ...], action: str, value: Any) -> None:
    holder: Any = data
    for part in path[:-1]:
        holder = holder[part]
    if action == "delete":
        del holder[path[-1]]
    elif action == "unknown" and isinstance(holder, list):
        holder.append(value)  # an extra element of whatever shape
    elif action == "unknown" and isinstance(holder[path[-1]], dict):
        holder[path[-1]]["no_such_field"] = value
    elif action == "unknown":
        holder["no_such_field"] = value
    else:
        holder[path[-1]] = value


def test_the_every_kind_job_is_valid() -> None:
    spec = parse_job(_EVERY_KIND)
    assert sorted({t.type for t in spec.tasks}) == ["copy", "create", "messages", "migrate", "status"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_KIND_PATHS), st.sampled_from(["set", "delete", "unknown"]), _VALUE)
def test_every_task_kind_rejects_malformed_fields_with_field_level_messages(
    path: tuple[Any, ...], action: str, value: Any
) -> None:
    data = json.loads(json.dumps(_EVERY_KIND))
    _mutate(data, path, action, value)
    try:
        spec = parse_job(data)
    except JobFileError as err:
        assert err.issues and all(i.field_path.startswith("tasks") and i.message for i in err.issues)
        return
    assert isinstance(spec, JobSpec)  # the mutation happened to be valid (e.g. another valid enum value)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_KIND_PATHS), st.sampled_from(["set", "delete", "unknown"]), _VALUE)
def test_malformed_yaml_job_files_name_the_file_and_line(
    path: tuple[Any, ...], action: str, value: Any
) -> None:
    import tempfile

    data = json.loads(json.dumps(_EVERY_KIND))
    _mutate(data, path, action, value)
    with tempfile.TemporaryDirectory() as folder:
        job = Path(folder) / "job.yaml"
        job.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        try:
            load_job(job)
        except JobFileError as err:
            assert err.issues
            for issue in err.issues:
                assert issue.file is not None and issue.file.endswith("job.yaml") and issue.field_path
                assert issue.line is not None and issue.line >= 1


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises_anything_but_job_validation_error(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "job.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_job(path)
        except JobFileError:
            pass


def test_the_documented_example_job_is_valid(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "job-files.md").read_text(encoding="utf-8")
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    write(tmp_path / "ids.csv", "id\n120210000000000009\n")
    write(tmp_path / "subscribers.csv", "subscription_token\ntok\n")
    spec = load_job(write(tmp_path / "spring.yaml", example))
    assert [task.type for task in spec.tasks] == ["create", "status", "copy", "migrate", "messages"]
    assert spec.summarize_kinds()["create_ad"] == 20
    assert spec.needs_reads


def test_fingerprint_bytes_are_the_whole_dump_streamed() -> None:
    """Journals compare fingerprints across versions: the streamed canonical JSON is the old whole dump."""
    import hashlib

    from fuzz_support import RICH_JOB

    from bulk_engine.operations.canonical import canonical_chunks

    spec = parse_job(RICH_JOB)
    whole = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    assert "".join(canonical_chunks(spec)) == whole
    assert spec.fingerprint() == hashlib.sha256(b"bulk-engine-job/v1\n" + whole.encode()).hexdigest()
    assert spec.fingerprint() == spec.fingerprint()  # cached job part, same answer

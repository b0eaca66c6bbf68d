"""A fixed corpus of hostile job files and CSVs (issue 20), generated at test time, through the real CLI.

Every invalid case must end with exit 2, a message naming the file and the rule, no traceback, and not one
connection to the Graph URL; the valid ones (a UTF-8 BOM, CRLF, aliases and merge keys used as meant)
validate. Bounded work is asserted structurally (the refusal and the rule that refused), never by timing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from fuzz_support import CountingServer, check_file

from bulk_engine.operations import JobFileError, load_job, yaml_input
from bulk_engine.operations.base import Issue, _short
from bulk_engine.operations.csvinput import CsvError, iter_rows
from bulk_engine.operations.reading import MAX_ALIAS_VALUES, MAX_DEPTH

STATUS_HEAD = "version: 1\naccount_id: act_1000000001\ntasks:\n"
STATUS_TASK = "  - {type: status, status: PAUSED, ids: ['1']}\n"
VALID_YAML = STATUS_HEAD + STATUS_TASK


@pytest.fixture(scope="module")
def server() -> Iterator[CountingServer]:
    with CountingServer() as counting:
        yield counting


def laughs(levels: int) -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n" + VALID_YAML


def csv_job(folder: Path, csv_bytes: bytes, kind: str = "status") -> Path:
    (folder / "input.csv").write_bytes(csv_bytes)
    task = (
        "  - {type: status, status: PAUSED, csv: input.csv}\n"
        if kind == "status"
        else "  - {type: messages, campaign_id: '1', message: Hi, csv: input.csv}\n"
    )
    return write(folder / "job.yaml", (STATUS_HEAD + task).encode())


def write(path: Path, raw: bytes) -> Path:
    path.write_bytes(raw)
    return path


def deep_json(depth: int) -> bytes:
    return b'{"version": 1, "x": ' + b"[" * depth + b"]" * depth + b"}"


def deep_yaml_block(depth: int) -> bytes:
    return ("x:\n" + "".join("  " * (i + 1) + "-\n" for i in range(depth))).encode()


@dataclass(frozen=True)
class FileCase:
    """Writes one job file (its bytes made when the module is imported, the file when a test runs)."""

    name: str
    raw: bytes

    def __call__(self, folder: Path) -> Path:
        return write(folder / self.name, self.raw)


def yaml_case(text: str | bytes, name: str = "job.yaml") -> FileCase:
    return FileCase(name, text.encode() if isinstance(text, str) else text)


def json_case(text: str | bytes) -> FileCase:
    return yaml_case(text, "job.json")


CTA_LIST = (
    STATUS_HEAD
    + "  - type: create\n    creatives:\n      c:\n        object_story_spec:\n          page_id: '1'\n"
    "          link_data:\n            link: https://example.com\n            call_to_action:\n"
    "              {type: MESSAGE_PAGE, value: {app_destination: [MESSENGER]}}\n"
)

# (case id, build the file in a folder, rule expected in the message — None: the file is valid)
CASES: list[tuple[str, Callable[[Path], Path], str | None]] = [
    # encodings
    ("latin-1 yaml", yaml_case(("account_id: act_1\njob_id: caf\xe9\n").encode("latin-1")), "file.encoding"),
    ("utf-16 bom yaml", yaml_case(VALID_YAML.encode("utf-16")), "file.encoding"),
    ("utf-16 no bom json", json_case('{"version": 1}'.encode("utf-16-le")), "file.encoding"),
    ("utf-32 json", json_case('{"version": 1}'.encode("utf-32")), "file.encoding"),
    ("binary", yaml_case(bytes(range(256)) * 4), "file.encoding"),
    ("nul in text", yaml_case(b"version: 1\x00\n"), "file.encoding"),
    ("truncated utf-8", yaml_case(VALID_YAML.encode() + b"# \xe2\x82"), "file.encoding"),
    ("utf-8 bom is fine", yaml_case(b"\xef\xbb\xbf" + VALID_YAML.encode()), None),
    ("crlf is fine", yaml_case(VALID_YAML.replace("\n", "\r\n")), None),
    ("tab indentation", yaml_case("version: 1\ntasks:\n\t- type: status\n"), "file.yaml"),
    ("control character", yaml_case("version: 1\njob_id: a\x01b\n"), "file.yaml"),
    ("surrogate escape json", json_case('{"version": 1, "job_id": "\\ud800", "tasks": []}'), "file.text"),
    ("surrogate escape yaml", yaml_case('version: 1\njob_id: "\\ud800"\n'), "file.yaml"),
    # depth
    *((f"json depth {d}", json_case(deep_json(d)), "file.depth") for d in (500, 5000, 100_000)),
    *((f"yaml flow depth {d}", yaml_case(b"x: " + b"[" * d + b"]" * d), "file.depth") for d in (500, 5000)),
    ("yaml flow depth 100000", yaml_case(b"x: " + b"[" * 100_000 + b"]" * 100_000), "file.depth"),
    ("yaml block depth 500", yaml_case(deep_yaml_block(500)), "file.depth"),
    ("yaml mapping depth 500", yaml_case("".join("  " * i + f"k{i}:\n" for i in range(500))), "file.depth"),
    # aliases
    ("recursive alias", yaml_case("a: &a [*a]\n" + VALID_YAML), "file.alias_cycle"),
    ("recursive mapping alias", yaml_case("a: &a {b: *a}\n" + VALID_YAML), "file.alias_cycle"),
    *((f"billion laughs {n}", yaml_case(laughs(n)), "file.aliases") for n in (7, 8, 10)),
    ("undefined alias", yaml_case("version: *nope\n"), "file.yaml"),
    (
        "aliases in lists are fine",
        yaml_case(
            "version: 1\naccount_id: act_1\ntasks:\n  - &t {type: status, status: PAUSED, ids: ['1']}\n"
            "  - {type: status, status: ACTIVE, ids: ['2']}\n"
        ),
        None,
    ),
    (
        "merge keys are fine",
        yaml_case(
            "version: 1\naccount_id: act_1\ntasks:\n  - &pause {type: status, status: PAUSED, ids: ['1']}\n"
            "  - <<: *pause\n    ids: ['2']\n    key: second\n"
        ),
        None,
    ),
    ("merge of a scalar", yaml_case("version: 1\ntasks:\n  - <<: 5\n"), "file.yaml_merge"),
    # numbers
    ("json 5000-digit integer", json_case('{"version": ' + "9" * 5000 + "}"), "file.number"),
    ("json 1e999", json_case('{"version": 1e999}'), "file.number"),
    ("json NaN", json_case('{"version": NaN}'), "file.number"),
    ("json -Infinity", json_case('{"version": -Infinity}'), "file.number"),
    ("yaml .inf", yaml_case("version: .inf\n"), "file.number"),
    ("yaml 5000-digit integer", yaml_case("version: " + "9" * 5000 + "\n"), "file.number"),
    # tags, keys, documents
    ("binary tag", yaml_case("version: 1\njob_id: !!binary aGVsbG8=\n"), "file.yaml_tag"),
    ("python tag", yaml_case("version: !!python/object:os.system [echo]\n"), "file.yaml_tag"),
    ("set tag", yaml_case("version: 1\ntasks: !!set {a: null}\n"), "file.yaml_tag"),
    ("omap tag", yaml_case("version: 1\ntasks: !!omap [{a: 1}]\n"), "file.yaml_tag"),
    ("local tag", yaml_case("version: !mine 1\n"), "file.yaml_tag"),
    ("int tag on text", yaml_case("version: !!int abc\njob_id: !!float 0x\n"), "file.number"),
    ("complex key", yaml_case("? [a]\n: b\n"), "file.yaml_key"),
    ("alias key", yaml_case("x: &k a\n*k : b\n"), "file.yaml_key"),
    ("number and null keys", yaml_case("1: x\nnull: y\n" + VALID_YAML), "schema.extra_forbidden"),
    (
        "timestamps stay text",
        yaml_case("version: 1\naccount_id: act_1\njob_id: 2026-03-01\n" + "tasks:\n" + STATUS_TASK),
        None,
    ),
    ("huge key yaml", yaml_case("k" * 200_000 + ": 1\n"), "file.yaml"),
    ("huge key json", json_case(json.dumps({"k" * 200_000: 1, "version": 1})), "schema.extra_forbidden"),
    ("duplicate key yaml", yaml_case("version: 1\nversion: 1\n"), "file.duplicate_key"),
    ("duplicate key json", json_case('{"version": 1, "tasks": [], "tasks": []}'), "file.duplicate_key"),
    ("two documents", yaml_case(VALID_YAML + "---\n" + VALID_YAML), "file.documents"),
    ("empty yaml", yaml_case(""), "file.empty"),
    ("comments only", yaml_case("# nothing\n"), "file.empty"),
    ("empty json", json_case("  \n"), "file.empty"),
    ("a list document", yaml_case("- 1\n- 2\n"), "job.type"),
    ("a scalar document", json_case('"job"'), "job.type"),
    ("json syntax", json_case('{"version": 1,\n "tasks": [}\n'), "file.json"),
    ("yaml syntax", yaml_case("version: 1\ntasks: [\n"), "file.yaml"),
    # types anywhere in the tree
    ("call_to_action app list", yaml_case(CTA_LIST), "creative.cta_destination"),
    (
        "10k tasks",
        yaml_case(
            STATUS_HEAD
            + STATUS_TASK.replace("'1'", "'{n}'") * 1
            + "".join(
                f"  - {{type: status, status: PAUSED, ids: ['{i}'], key: k{i}}}\n" for i in range(10_000)
            )
        ),
        "status.id",
    ),
]


@pytest.mark.parametrize(("build", "rule"), [pytest.param(b, r, id=name) for name, b, r in CASES])
def test_hostile_job_file(
    tmp_path: Path, server: CountingServer, build: Callable[[Path], Path], rule: str | None
) -> None:
    path = build(tmp_path)
    result = check_file(path, server)
    if rule is None:
        assert result.code == 0, result.err[-2000:]
    else:
        assert result.code == 2
        assert f"(rule {rule})" in result.err, result.err[-2000:]
        assert len(result.err) < 100_000  # bounded: issues are capped, values and keys truncated


CSV_CASES: list[tuple[str, bytes, str, int]] = [
    ("latin-1", "id\n1\ncaf\xe9\n".encode("latin-1"), "csv.encoding", 3),
    ("utf-16", "id\n1\n".encode("utf-16"), "csv.encoding", 1),
    ("utf-16 no bom", "id\n1\n".encode("utf-16-le"), "csv.encoding", 1),
    ("nul byte", b"id\n1\n2\x003\n", "csv.encoding", 3),
    ("field over the limit", b"id\n1\n" + b"9" * 200_000 + b"\n", "csv.size", 3),
    ("unterminated quote", b'id\n1\n"2\n3\n', "csv.read", 3),
    ("huge line", b"id\n" + b"1," * 1_500_000 + b"\n", "csv.size", 2),
    ("absurd columns", b"id\n" + b",".join([b"1"] * 5000) + b"\n", "csv.size", 2),
    ("bare carriage returns", b"id\r1\r2\r", "csv.read", 1),
]


@pytest.mark.parametrize(("data", "rule", "line"), [pytest.param(d, r, n, id=c) for c, d, r, n in CSV_CASES])
@pytest.mark.parametrize("kind", ["status", "messages"])
def test_hostile_csv_is_refused_before_any_call(
    tmp_path: Path, server: CountingServer, data: bytes, rule: str, line: int, kind: str
) -> None:
    result = check_file(csv_job(tmp_path, data, kind), server)
    assert result.code == 2
    assert f"{tmp_path / 'input.csv'}:{line}:" in result.err and f"(rule {rule})" in result.err, result.err


def test_csv_with_bom_and_crlf_reads_and_streams(tmp_path: Path) -> None:
    path = write(tmp_path / "ids.csv", b"\xef\xbb\xbfid,status\r\n1,PAUSED\r\n2,ACTIVE\r\n")
    rows = iter_rows(path, "id", columns=("status",))
    first = next(rows)  # lazy: one row at a time
    assert (first.line, first.values) == (2, {"id": "1", "status": "PAUSED"})
    assert [r.values["id"] for r in rows] == ["2"]


def test_csv_error_carries_line_and_rule(tmp_path: Path) -> None:
    path = write(tmp_path / "ids.csv", b"id\n1\n\xff\n")
    with pytest.raises(CsvError) as caught:
        list(iter_rows(path, "id"))
    assert (caught.value.line, caught.value.rule) == (3, "csv.encoding")
    assert "byte offset 5" in caught.value.message


def test_billion_laughs_is_refused_where_the_expansion_crosses_the_bound(tmp_path: Path) -> None:
    # l0 is 11 values; each level multiplies by 10: the alias that crosses 1,000,000 is on level 5
    path = write(tmp_path / "laughs.yaml", laughs(9).encode())
    with pytest.raises(JobFileError) as caught:
        load_job(path)
    [issue] = caught.value.issues
    assert issue.rule == "file.aliases" and f"{MAX_ALIAS_VALUES:,}" in issue.message
    assert issue.line == 6 and issue.field_path.startswith("l5[")  # refused mid-line, nothing built past it


def test_depth_is_refused_at_the_first_level_too_deep(tmp_path: Path) -> None:
    path = write(tmp_path / "deep.json", deep_json(100_000))
    with pytest.raises(JobFileError) as caught:
        load_job(path)
    [issue] = caught.value.issues
    assert issue.rule == "file.depth"
    assert (issue.line, issue.column) == (1, len('{"version": 1, "x": ') + MAX_DEPTH)


def test_issue_values_are_rendered_within_their_budget() -> None:
    shared: list[object] = ["lol"] * 10
    for _ in range(30):  # 10**30 leaves if serialised whole
        shared = [shared] * 10
    text = _short(shared)
    assert len(text) <= 80 and text.startswith("[[[[")
    assert len(_short("x" * 50_000_000)) == 80
    assert _short({"a": 1, "b": [True, None]}) == '{"a": 1, "b": [true, null]}'
    assert _short(10**5000).startswith("<a 16610-bit integer")
    issue = Issue(("tasks", 0), "m", "v", "r", file="f.yaml", line=3, column=7)
    assert str(issue).startswith("f.yaml:3:7: tasks[0] = ")
    assert issue.to_dict()["column"] == 7
    # the JSON event keeps short scalars as they are and bounds the rest
    assert Issue(("x",), "m", 12).to_dict()["value"] == 12
    assert Issue(("x",), "m", "short").to_dict()["value"] == "short"
    huge = Issue(("x",), "m", "y" * 10_000_000).to_dict()["value"]
    assert isinstance(huge, str) and len(huge) <= 200 and huge.endswith("…")
    assert len(Issue(("x",), "m", shared).to_dict()["value"]) <= 200


def test_positions_are_found_only_for_issues_and_through_aliases(tmp_path: Path) -> None:
    lines = [
        "version: 1",
        "account_id: act_1",
        "tasks:",
        "  - {type: status, status: PAUSED, ids: &ids ['1', 'x'], key: a}",
        "  - {type: status, status: PAUSED, ids: *ids, key: b}",
    ]
    with pytest.raises(JobFileError) as caught:
        load_job(write(tmp_path / "job.yaml", ("\n".join(lines) + "\n").encode()))
    found = {i.field_path: (i.line, i.column) for i in caught.value.issues}
    assert found["tasks[0].ids[1]"] == (4, lines[3].index("'x'") + 1)
    assert found["tasks[1].ids[1]"] == (5, lines[4].index("ids:") + 1)  # the key whose alias brought it in

    data = {
        "version": 1,
        "account_id": "act_1",
        "tasks": [{"type": "status", "status": "PAUSED", "ids": ["1", "x"]}],
    }
    text = json.dumps(data, indent=2)
    with pytest.raises(JobFileError) as caught:
        load_job(write(tmp_path / "job.json", text.encode()))
    [issue] = caught.value.issues
    line = text.splitlines()[(issue.line or 0) - 1]
    assert issue.column == line.index('"x"') + 1


@pytest.mark.parametrize(
    ("build", "rule"),
    [
        pytest.param(b, r, id=name)
        for name, b, r in CASES
        if isinstance(b, FileCase) and b.name.endswith(".yaml")
    ],
)
def test_hostile_yaml_with_the_pure_python_parser(
    tmp_path: Path,
    server: CountingServer,
    build: Callable[[Path], Path],
    rule: str | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without libyaml the same files end the same way (the fallback parser is a state machine too)."""
    path = build(tmp_path)
    monkeypatch.setattr(yaml_input, "YAML_LOADER", yaml.SafeLoader)
    result = check_file(path, server)
    assert result.code == (0 if rule is None else 2), result.err[-2000:]
    if rule is not None and rule != "file.yaml":  # syntax messages differ between the two parsers
        assert f"(rule {rule})" in result.err or "(rule file.yaml)" in result.err, result.err[-2000:]

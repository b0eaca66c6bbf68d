"""Job files: YAML or JSON documents validated into a frozen :class:`JobSpec` before any call is sent.

Contract (the CLI, the journal and the Airflow provider build on it)::

    spec = load_job("spring.yaml")             # or parse_job(dict, source="…")  → JobSpec, or JobValidationError
    spec.job_id                                # str | None
    spec.fingerprint()                         # stable hash of the normalised job + the CSVs it references
    for op in spec.compile(CompileContext()):  # lazy; deterministic op ids "<task key>/…"
        ...
    spec.summarize_kinds(ctx)                  # expected operations per kind (progress bars)
    report = await run_job(engine, spec, ctx)  # bulk_engine.operations.run: every task end to end

Format (``docs/job-schema.json`` is the JSON Schema; ``docs/job-files.md`` the guide)::

    version: 1
    job_id: spring-launch          # optional; the journal's key
    account_id: act_1000000001     # default ad account of every task
    tasks:
      - type: create               # create | status | copy | migrate | messages | operations
        ...

Errors: every problem is reported at once as a :class:`~bulk_engine.operations.base.JobFileError` (a
:class:`~bulk_engine.errors.JobValidationError`), one line per problem naming the file, the line (from PyYAML's
node marks; JSON files are read through the same composer), the field path, the offending value, the rule and,
when the local rule mirrors a documented Graph error, its code/subcode.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field, PrivateAttr, ValidationError

from bulk_engine.planning.graph import Operation

from .base import CompileContext, Issue, JobFileError, TaskEnv
from .copy import CopyTask
from .create import CreateTask
from .csvinput import file_sha256
from .messages import MessagesTask
from .migrate import MigrateTask
from .raw import OperationsTask
from .specs import job_model_config
from .status import StatusTask
from .task import ACCOUNT_PATTERN

__all__ = ["TASK_TYPES", "JobSpec", "Task", "job_schema", "load_job", "parse_job"]

Task = Annotated[
    CreateTask | StatusTask | CopyTask | MigrateTask | MessagesTask | OperationsTask,
    Field(discriminator="type"),
]
TASK_TYPES = ("create", "status", "copy", "migrate", "messages", "operations")

LineMap = dict[tuple[str | int, ...], int]


class JobSpec(BaseModel):
    """A validated bulk job: a list of tasks run in order (see the module docstring)."""

    model_config = job_model_config("BulkEngineJob")

    version: Literal[1] = 1
    job_id: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
    description: str | None = None
    account_id: str | None = Field(
        None, pattern=ACCOUNT_PATTERN, description="Default ad account of every task"
    )
    tasks: list[Task] = Field(min_length=1)

    _source: str = PrivateAttr("<inline>")
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _lines: LineMap = PrivateAttr(default_factory=dict)
    _checked: bool = PrivateAttr(False)

    # --- identity ---------------------------------------------------------------------------------------------
    @property
    def source(self) -> str:
        return self._source

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def task_key(self, index: int) -> str:
        task = self.tasks[index]
        return task.key or f"t{index}"

    def fingerprint(self) -> str:
        """SHA-256 of the normalised job (canonical JSON) and of every CSV file it references.

        Formatting, comments, key order and defaults written out or omitted do not change it; any change of
        content (including a CSV row) does. Journals compare it to refuse resuming with a different job.
        """
        digest = hashlib.sha256(b"bulk-engine-job/v1\n")
        digest.update(
            json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode()
        )
        for task in self.tasks:
            for name in task.input_files():
                path = Path(name) if Path(name).is_absolute() else self._base_dir / name
                digest.update(f"\n{name}:".encode())
                digest.update(file_sha256(path).encode() if path.is_file() else b"missing")
        return digest.hexdigest()

    @property
    def needs_reads(self) -> bool:
        """True when some task must read Graph first (status selectors, copy, migrate): use ``run_job``."""
        return any(task.needs_reads for task in self.tasks)

    # --- validation -------------------------------------------------------------------------------------------
    def issues(self, *, inputs: bool = True) -> list[Issue]:
        """Every rule violation (and, with ``inputs``, every CSV problem), located in the job file."""
        found: list[Issue] = []
        keys: dict[str, int] = {}
        for i, task in enumerate(self.tasks):
            key = self.task_key(i)
            if key in keys:
                found.append(
                    Issue(("tasks", i, "key"), f"duplicate task key (also task {keys[key]})", key, "job.key")
                )
            keys[key] = i
            found.extend(issue.prefixed(("tasks", i)) for issue in task.rule_issues())
            if inputs:
                found.extend(issue.prefixed(("tasks", i)) for issue in task.input_issues(self._base_dir))
        return [self._locate(issue) for issue in found]

    def check(self, *, inputs: bool = True) -> None:
        """Raise :class:`JobFileError` listing every issue (nothing is sent before this passes)."""
        problems = self.issues(inputs=inputs)
        if problems:
            raise JobFileError(problems, self._source)
        if inputs:
            self._checked = True

    def ensure_checked(self) -> None:
        """:meth:`check` unless this spec already passed it (``load_job``/``parse_job`` check every job)."""
        if not self._checked:
            self.check()

    def _locate(self, issue: Issue) -> Issue:
        if issue.file is not None:
            return issue
        return issue.located(self._source, _line_for(self._lines, issue.path))

    # --- compile ----------------------------------------------------------------------------------------------
    def task_env(self, index: int, ctx: CompileContext) -> TaskEnv:
        task = self.tasks[index]
        account = task.account_id or self.account_id or ctx.default_account_id
        if account is None:
            raise JobFileError(
                [
                    self._locate(
                        Issue(
                            ("tasks", index, "account_id"),
                            "no ad account: set account_id on the task or the job, or a default account",
                            None,
                            "job.account",
                            has_value=False,
                        )
                    )
                ],
                self._source,
            )
        return TaskEnv(self.task_key(index), account, self._base_dir, ctx)

    def compile(self, ctx: CompileContext | None = None) -> Iterator[Operation]:
        """Stream the operations of every task that needs no reads, in task order (lazy, bounded memory).

        Tasks that must read Graph first (``needs_reads``: status selectors or ``read_current``, copy with its
        fallback, migrate) are planned by :func:`~bulk_engine.operations.run.run_job` and yield nothing here.
        Local refusals are appended to ``ctx.skipped``. Raises :class:`JobFileError` before the first operation
        when the job breaks a rule.
        """
        context = ctx if ctx is not None else CompileContext()
        self.ensure_checked()
        envs = [self.task_env(i, context) for i in range(len(self.tasks))]
        for task, env in zip(self.tasks, envs, strict=True):
            if not task.needs_reads:
                yield from task.compile(env)

    def summarize_kinds(self, ctx: CompileContext | None = None) -> dict[str, int]:
        """Expected number of operations per kind (``create_ad``…) for progress; reads are not counted."""
        context = ctx if ctx is not None else CompileContext()
        counts: dict[str, int] = {}
        for i, task in enumerate(self.tasks):
            for kind, n in task.estimate(self.task_env(i, context)).items():
                counts[kind] = counts.get(kind, 0) + n
        return counts


# --- loading ------------------------------------------------------------------------------------------------
def load_job(path: str | Path) -> JobSpec:
    """Read a YAML (``.yaml``/``.yml``) or JSON (``.json``) job file and validate it (rules and CSV inputs).

    CSV paths in the job are relative to the job file's folder. Raises :class:`JobFileError` (a
    ``JobValidationError``) naming file, line, field path, value and rule for every problem.
    """
    file = Path(path)
    source = str(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise JobFileError(
            [Issue((), f"cannot read the job file: {err.strerror}", source, "file.read", file=source)], source
        ) from None
    data, lines = _parse_text(text, source, json_first=file.suffix.lower() == ".json")
    return parse_job(data, source, base_dir=file.resolve().parent, lines=lines)


def parse_job(
    data: Any,
    source: str = "<inline>",
    *,
    base_dir: str | Path | None = None,
    lines: LineMap | None = None,
) -> JobSpec:
    """Validate a job given as data (a dict from YAML/JSON or built in Python). See :func:`load_job`."""
    line_map = lines or {}
    if not isinstance(data, Mapping):
        raise JobFileError(
            [
                Issue(
                    (),
                    "a job must be a mapping with version, tasks…",
                    data,
                    "job.type",
                    file=source,
                    line=line_map.get(()),
                )
            ],
            source,
        )
    try:
        spec = JobSpec.model_validate(data)
    except ValidationError as err:
        raise JobFileError(_pydantic_issues(err, data, source, line_map), source) from None
    spec._source = source
    spec._base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
    spec._lines = line_map
    spec.check()
    return spec


def job_schema() -> dict[str, Any]:
    """The JSON Schema of job files (published as ``docs/job-schema.json``)."""
    schema = JobSpec.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/meta-bulk-engine/meta-bulk-engine/docs/job-schema.json"
    return schema


# --- YAML with line numbers -----------------------------------------------------------------------------------
def _parse_text(text: str, source: str, *, json_first: bool) -> tuple[Any, LineMap]:
    if json_first:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise JobFileError(
                [
                    Issue(
                        (),
                        f"invalid JSON: {err.msg}",
                        None,
                        "file.json",
                        file=source,
                        line=err.lineno,
                        has_value=False,
                    )
                ],
                source,
            ) from None
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            return data, {}
        lines: LineMap = {}
        duplicates: list[Issue] = []
        if node is not None:
            _walk_nodes(node, (), lines, duplicates, source)
        return data, lines
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise JobFileError(
            [
                Issue(
                    (),
                    f"invalid YAML: {err.problem or err}",
                    None,
                    "file.yaml",
                    file=source,
                    line=mark.line + 1 if mark is not None else None,
                    has_value=False,
                )
            ],
            source,
        ) from None
    except yaml.YAMLError as err:
        raise JobFileError(
            [Issue((), f"invalid YAML: {err}", None, "file.yaml", file=source, has_value=False)], source
        ) from None
    lines = {}
    duplicates = []
    if node is not None:
        _walk_nodes(node, (), lines, duplicates, source)
    if duplicates:
        raise JobFileError(duplicates, source)
    return data, lines


def _walk_nodes(
    node: yaml.Node, path: tuple[str | int, ...], lines: LineMap, duplicates: list[Issue], source: str
) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key == "<<":
                continue
            if key in seen:
                duplicates.append(
                    Issue(
                        (*path, key),
                        "duplicate key (YAML keeps only the last one)",
                        key,
                        "file.duplicate_key",
                        file=source,
                        line=key_node.start_mark.line + 1,
                    )
                )
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk_nodes(value_node, (*path, key), lines, duplicates, source)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk_nodes(item, (*path, i), lines, duplicates, source)


def _line_for(lines: LineMap, path: tuple[str | int, ...]) -> int | None:
    for end in range(len(path), -1, -1):
        line = lines.get(tuple(path[:end]))
        if line is not None:
            return line
    return None


# --- pydantic errors → issues ----------------------------------------------------------------------------------
_MISSING = object()


def _clean_loc(loc: tuple[str | int, ...], data: Any) -> tuple[tuple[str | int, ...], Any]:
    """Map a pydantic ``loc`` onto the document: drop union tags and member names; return (path, value)."""
    path: list[str | int] = []
    current: Any = data
    parts = list(loc)
    i = 0
    while i < len(parts):
        part = parts[i]
        if i == 2 and parts[0] == "tasks" and isinstance(parts[1], int) and part in TASK_TYPES:
            i += 1  # the discriminator tag pydantic puts after tasks[i]
            continue
        if isinstance(current, Mapping) and isinstance(part, str) and part in current:
            path.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif isinstance(current, Mapping) and isinstance(part, str) and i == len(parts) - 1:
            path.append(part)  # a missing or unknown key: name it
            current = _MISSING
        # else: a union member label ("str", "dict[str,any]", "function-after[…]"): not part of the document
        i += 1
    return tuple(path), current


def _pydantic_issues(err: ValidationError, data: Any, source: str, lines: LineMap) -> list[Issue]:
    grouped: dict[tuple[tuple[str | int, ...], str], list[dict[str, Any]]] = {}
    order: list[tuple[tuple[str | int, ...], str]] = []
    for error in err.errors(include_url=False):
        path, value = _clean_loc(tuple(error["loc"]), data)
        kind = "missing" if error["type"] == "missing" else "value"
        key = (path, kind)
        if key not in grouped:
            grouped[key] = []
            order.append(key)
        grouped[key].append({**error, "_value": value})
    issues: list[Issue] = []
    for key in order:
        errors = grouped[key]
        path = key[0]
        first = errors[0]
        value = first["_value"]
        has_value = value is not _MISSING and first["type"] != "missing"
        messages = list(dict.fromkeys(_message(e) for e in errors))
        message = messages[0] if len(messages) == 1 else "must match one of: " + " | ".join(messages)
        rule = first["type"] if len({e["type"] for e in errors}) == 1 else "union"
        issues.append(
            Issue(
                path,
                message,
                value if has_value else None,
                f"schema.{rule}",
                file=source,
                line=_line_for(lines, path),
                has_value=has_value,
            )
        )
    return issues


def _message(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (not part of this object; Graph parameters without a typed field go in extra_params)"
    if kind == "union_tag_invalid" or kind == "union_tag_not_found":
        return "type must be one of: " + ", ".join(TASK_TYPES)
    return str(error["msg"])

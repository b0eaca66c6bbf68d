"""Build a create job in Python: typed calls that return handles.

::

    job = Job("act_1")
    c = job.campaign(name="Spring", objective="OUTCOME_TRAFFIC", special_ad_categories=[])
    s = job.adset(campaign=c, name="US", billing_event="IMPRESSIONS", optimization_goal="LINK_CLICKS",
                  daily_budget=1000, targeting={"geo_locations": {"countries": ["US"]}})
    hero = job.creative(name="Hero", object_story_spec={...})
    ad = job.ad(adset=s, creative=hero, name="Hero ad")
    result = await engine.run(job)
    result[ad].id                     # the ad's Graph id

Why this shape: a job file's create task already holds the typed specs (:class:`CampaignSpec`,
:class:`AdSetSpec`, :class:`AdCreativeSpec`, :class:`AdSpec`), the documented rules and the compiler. The
builder fills one such task per ad account and compiles it with the very code a job file goes through, so
Python and YAML jobs cannot drift apart: same parameters, same op ids, same rule ids and Graph codes. What
a raw :class:`~bulk_engine.planning.graph.Operation` restates — ``kind``, ``account_id``, ``path``, the
``Ref`` to the parent — is inferred.

- Each call validates its fields with the spec model at once (a typo or a wrong type raises
  :class:`BuildError` at the line that made it); the documented cross-object rules (:mod:`~bulk_engine.
  operations.rules`) run once the job is complete, when it is first iterated, and every problem is listed
  with the handle it belongs to. Nothing is sent before either.
- A handle's ``.id`` is a :class:`~bulk_engine.protocol.refs.Ref` to the Graph id its operation will get:
  usable in any later operation of the job (a raw ``Operation`` added with :meth:`Job.add` included).
- Op ids are the job file's (``c0``, ``c0/s0``, ``c0/s0/a0``, ``cr:<key>``, an inline creative ``…/a0/cr``;
  a campaign spec's ``repeat`` gives ``c0.1``, ``c0.2``…, its matrix ``c0/m0/a0``), under ``prefix`` when
  given; ``key=`` names an object's op id yourself (its children's ids are built on it).
- :meth:`Job.campaign` also takes a whole :class:`CampaignSpec` (ad sets, ads, a matrix, ``repeat``), as in a
  job file; creatives its ads name by key come from :meth:`Job.creative` (``key=``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import JobValidationError
from .operations.base import CompileContext, Issue, PathPart, TaskEnv
from .operations.create import CreateTask
from .operations.schema_words import schema_message
from .operations.specs import AdCreativeSpec, AdSetSpec, AdSpec, CampaignSpec
from .planning.graph import Operation, OpKind
from .protocol.refs import Ref, substitute

__all__ = ["BuildError", "Handle", "Job"]

_TASK_KEY = "b"  # the compiled task's op-id prefix, replaced by the builder's names


class BuildError(JobValidationError, ValueError):
    """A built job broke its specs or the documented rules; nothing was sent.

    ``str()`` lists every problem on its own line, naming the handle (``campaign 'c0'``), the field path, the
    value and the rule (with the Graph code it mirrors); ``issues`` holds them as
    :class:`~bulk_engine.operations.base.Issue` objects whose ``file`` is the handle.
    """

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = tuple(issues)
        count = len(self.issues)
        lines = [f"the job is invalid ({count} problem{'s' if count != 1 else ''}):"]
        lines.extend(f"  {issue}" for issue in self.issues)
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Handle:
    """An object the job will create: its op id, what it is and its ad account.

    ``.id`` refers to the Graph id it will get (a :class:`~bulk_engine.protocol.refs.Ref`); ``result[handle]``
    on the :class:`~bulk_engine.results.JobResult` is its :class:`~bulk_engine.results.Outcome`.
    """

    op_id: str
    kind: OpKind
    account_id: str

    @property
    def id(self) -> Ref:
        return Ref(self.op_id)

    def ref(self, path: str = "$.id") -> Ref:
        """Another value of its result (a JSONPath), e.g. ``"$.images.*.hash"``."""
        return Ref(self.op_id, path)


@dataclass
class _AdSet:
    handle: Handle
    spec: AdSetSpec
    ads: list[AdSpec] = field(default_factory=list)
    ad_handles: list[Handle] = field(default_factory=list)


@dataclass
class _Campaign:
    handle: Handle
    spec: CampaignSpec
    adsets: list[_AdSet] = field(default_factory=list)


@dataclass
class _Account:
    """One ad account's share of the job: one create task's worth."""

    creatives: dict[str, AdCreativeSpec] = field(default_factory=dict)
    campaigns: list[_Campaign] = field(default_factory=list)


class Job:
    """A create job assembled in Python; iterate it (or hand it to ``BulkEngine.run``) for its operations."""

    def __init__(self, account: str, *, prefix: str = "") -> None:
        self.account = account
        self.prefix = prefix
        self._accounts: dict[str, _Account] = {}
        self._extra: list[Operation] = []  # raw operations (add), in the order given
        self._names: dict[str, str] = {}  # "<account>\0<compiled op id>" → the builder's op id
        self._locals: dict[str, str] = {}  # the builder's op id → its compiled op id (within its account)
        self._order: dict[str, int] = {}  # the builder's op id → when its handle was made
        self._repeats: dict[str, str] = {}  # a repeated campaign's copy ("c0.2") → its handle's op id
        self._campaigns: dict[str, _Campaign] = {}
        self._adsets: dict[str, _AdSet] = {}
        self._creative_keys: dict[str, str] = {}  # a creative's op id → its key in the account's task
        self._used: set[str] = set()
        self._campaign_count = 0
        self._creative_count = 0
        self._built: list[Operation] | None = None

    # --- objects ---------------------------------------------------------------------------------------
    def campaign(
        self,
        spec: CampaignSpec | None = None,
        /,
        *,
        key: str | None = None,
        account: str | None = None,
        **fields: Any,
    ) -> Handle:
        """A campaign (:class:`CampaignSpec` fields, or a whole spec with its ad sets, ads and matrix)."""
        if spec is None:
            spec = _spec(CampaignSpec, fields, "campaign", key)
        elif fields:
            raise TypeError("pass a CampaignSpec or its fields, not both")
        act = account or self.account
        draft = self._account(act)
        index = self._campaign_count
        self._campaign_count += 1
        handle = self._handle(key or self._name(f"c{index}"), OpKind.CREATE_CAMPAIGN, act)
        draft.campaigns.append(campaign := _Campaign(handle, spec))
        self._campaigns[handle.op_id] = campaign
        self._rename(act, f"{_TASK_KEY}/c{len(draft.campaigns) - 1}", handle.op_id, repeat=spec.repeat)
        return handle

    def adset(
        self, spec: AdSetSpec | None = None, /, *, campaign: Handle, key: str | None = None, **fields: Any
    ) -> Handle:
        """An ad set of ``campaign`` (:class:`AdSetSpec` fields; its ads are added with :meth:`ad`)."""
        parent = self._campaign_of(campaign)
        if spec is None:
            spec = _spec(AdSetSpec, fields, "adset", key)
        elif fields:
            raise TypeError("pass an AdSetSpec or its fields, not both")
        if parent.spec.repeat != 1 or parent.spec.ad_sets or parent.spec.ad_set_matrix is not None:
            raise TypeError(f"campaign {campaign.op_id!r} came as a whole spec: give its ad sets in the spec")
        j = len(parent.adsets)
        handle = self._handle(key or f"{campaign.op_id}/s{j}", OpKind.CREATE_ADSET, campaign.account_id)
        parent.adsets.append(adset := _AdSet(handle, spec))
        self._adsets[handle.op_id] = adset
        self._rename(campaign.account_id, f"{self._locals[campaign.op_id]}/s{j}", handle.op_id)
        return handle

    def creative(
        self,
        spec: AdCreativeSpec | None = None,
        /,
        *,
        key: str | None = None,
        account: str | None = None,
        **fields: Any,
    ) -> Handle:
        """A creative ads share (:class:`AdCreativeSpec` fields). ``key`` is its op id and how a spec's ads
        name it (``AdSpec(creative=key)``); without one it is ``cr:<n>``, named ``"<n>"``."""
        if spec is None:
            spec = _spec(AdCreativeSpec, fields, "creative", key)
        elif fields:
            raise TypeError("pass an AdCreativeSpec or its fields, not both")
        act = account or self.account
        draft = self._account(act)
        name = key or str(self._creative_count)  # its key in the account's task: what a spec's ads name
        self._creative_count += key is None
        if name in draft.creatives:
            raise ValueError(f"creative key {name!r} is used twice in ad account {act}")
        handle = self._handle(key or self._name(f"cr:{name}"), OpKind.CREATE_CREATIVE, act)
        draft.creatives[name] = spec
        self._creative_keys[handle.op_id] = name
        self._rename(act, f"{_TASK_KEY}/cr:{name}", handle.op_id)
        return handle

    def ad(
        self,
        spec: AdSpec | None = None,
        /,
        *,
        adset: Handle,
        creative: Handle | AdCreativeSpec | str | None = None,
        key: str | None = None,
        **fields: Any,
    ) -> Handle:
        """An ad of ``adset`` showing ``creative``: a creative's handle, an inline :class:`AdCreativeSpec`
        (created with the ad, op id ``<ad>/cr``) or the Graph id of an existing creative."""
        parent = self._adset_of(adset)
        if spec is None:
            fields = {**fields, **self._creative_field(creative, adset)}
            spec = _spec(AdSpec, fields, "ad", key)
        elif fields or creative is not None:
            raise TypeError("pass an AdSpec or its fields (and creative), not both")
        k = len(parent.ads)
        handle = self._handle(key or f"{adset.op_id}/a{k}", OpKind.CREATE_AD, adset.account_id)
        parent.ads.append(spec)
        parent.ad_handles.append(handle)
        self._rename(adset.account_id, f"{self._locals[adset.op_id]}/a{k}", handle.op_id)
        return handle

    def add(self, op: Operation) -> Handle:
        """A raw operation, for what the builders don't cover (an update, a read, another edge)."""
        self._claim(op.op_id)
        self._order[op.op_id] = len(self._order)
        self._built = None
        self._extra.append(op)
        return Handle(op.op_id, op.kind, op.account_id)

    # --- the job -----------------------------------------------------------------------------------------
    def operations(self) -> list[Operation]:
        """Every operation, parents before children (raises :class:`BuildError` on a broken rule)."""
        if self._built is None:
            issues: list[Issue] = []
            built: list[tuple[int, int, Operation]] = []
            for act, draft in self._accounts.items():
                task = self._task(act, draft)
                issues.extend(self._issues(act, draft, task))
                if not issues:
                    env = TaskEnv(_TASK_KEY, act, Path.cwd(), CompileContext(default_account_id=act))
                    for op in task.compile(env):
                        named, owner = self._renamed(act, op)
                        built.append((self._order.get(owner, -1), len(built), named))
            if issues:
                raise BuildError(issues)
            # in the order the handles were made (a parent's handle always comes before its children's)
            built.extend((self._order[op.op_id], len(built), op) for op in self._extra)
            self._built = [op for _, _, op in sorted(built, key=lambda t: t[:2])]
        return list(self._built)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.operations())

    def __len__(self) -> int:
        return len(self.operations())

    # --- compiling through the job-file path -------------------------------------------------------------
    @staticmethod
    def _task(act: str, draft: _Account) -> CreateTask:
        campaigns = [
            c.spec
            if not c.adsets
            else c.spec.model_copy(
                update={"ad_sets": [s.spec.model_copy(update={"ads": list(s.ads)}) for s in c.adsets]}
            )
            for c in draft.campaigns
        ]
        return CreateTask(
            type="create", key=_TASK_KEY, account_id=act, creatives=draft.creatives, campaigns=campaigns
        )

    def _issues(self, act: str, draft: _Account, task: CreateTask) -> Iterator[Issue]:
        """The task's rule issues, each told against the handle it belongs to."""
        for issue in task.rule_issues():
            handle, rest = self._owner(act, draft, issue.path)
            where = f"{handle.kind.value.removeprefix('create_')} {handle.op_id!r}" if handle else act
            yield dataclasses.replace(issue, path=rest, file=where)

    def _owner(
        self, act: str, draft: _Account, path: tuple[PathPart, ...]
    ) -> tuple[Handle | None, tuple[PathPart, ...]]:
        if len(path) >= 2 and path[0] == "creatives":
            op_id = self._names.get(f"{act}\0{_TASK_KEY}/cr:{path[1]}")
            return (Handle(op_id, OpKind.CREATE_CREATIVE, act) if op_id else None), path[2:]
        if len(path) < 2 or path[0] != "campaigns" or not isinstance(path[1], int):
            return None, path
        campaign = draft.campaigns[path[1]]
        if (
            len(path) >= 4
            and path[2] == "ad_sets"
            and isinstance(path[3], int)
            and path[3] < len(campaign.adsets)
        ):
            adset = campaign.adsets[path[3]]
            if (
                len(path) >= 6
                and path[4] == "ads"
                and isinstance(path[5], int)
                and path[5] < len(adset.ad_handles)
            ):
                return adset.ad_handles[path[5]], path[6:]
            return adset.handle, path[4:]
        return campaign.handle, path[2:]

    def _renamed(self, act: str, op: Operation) -> tuple[Operation, str]:
        """``op`` with the builder's op ids, itself and in every reference it holds; and the op id of the
        handle it belongs to (an inline creative: its ad's; a spec's child: its campaign's)."""

        def owned(op_id: str) -> tuple[str, str]:
            parts = op_id.split("/")
            for end in range(len(parts), 0, -1):
                found = self._names.get(f"{act}\0{'/'.join(parts[:end])}")
                if found is not None:
                    return "/".join([found, *parts[end:]]), found
            plain = self._name(op_id.removeprefix(f"{_TASK_KEY}/"))
            return plain, plain

        def ref(found: Ref) -> Ref:
            return Ref(owned(found.op_id)[0], found.path)

        path = op.path
        if isinstance(path, Ref):
            path = ref(path)
        elif isinstance(path, tuple):
            path = tuple(ref(p) if isinstance(p, Ref) else p for p in path)
        op_id, owner = owned(op.op_id)
        renamed = dataclasses.replace(op, op_id=op_id, path=path, params=substitute(op.params, ref))
        return renamed, self._repeats.get(owner, owner)

    # --- bookkeeping -------------------------------------------------------------------------------------
    def _account(self, act: str) -> _Account:
        self._built = None
        return self._accounts.setdefault(act, _Account())

    def _name(self, local: str) -> str:
        return f"{self.prefix}/{local}" if self.prefix else local

    def _claim(self, op_id: str) -> None:
        if op_id in self._used:
            raise ValueError(f"op id {op_id!r} is used twice in the job")
        self._used.add(op_id)

    def _handle(self, op_id: str, kind: OpKind, act: str) -> Handle:
        self._claim(op_id)
        self._order[op_id] = len(self._order)
        return Handle(op_id, kind, act)

    def _rename(self, act: str, local: str, op_id: str, *, repeat: int = 1) -> None:
        self._names[f"{act}\0{local}"] = op_id
        self._locals[op_id] = local
        for n in range(1, repeat + 1) if repeat > 1 else ():
            self._names[f"{act}\0{local}.{n}"] = f"{op_id}.{n}"
            self._repeats[f"{op_id}.{n}"] = op_id

    def _campaign_of(self, handle: Handle) -> _Campaign:
        found = self._campaigns.get(handle.op_id)
        if found is None or found.handle != handle:
            raise ValueError(f"{handle.op_id!r} is not a campaign of this job")
        self._built = None
        return found

    def _adset_of(self, handle: Handle) -> _AdSet:
        found = self._adsets.get(handle.op_id)
        if found is None or found.handle != handle:
            raise ValueError(f"{handle.op_id!r} is not an ad set of this job")
        self._built = None
        return found

    def _creative_field(
        self, creative: Handle | AdCreativeSpec | str | None, adset: Handle
    ) -> dict[str, Any]:
        if isinstance(creative, AdCreativeSpec):
            return {"creative_spec": creative}
        if isinstance(creative, Handle):
            if creative.kind is not OpKind.CREATE_CREATIVE or creative.account_id != adset.account_id:
                raise ValueError(f"{creative.op_id!r} is not a creative of ad account {adset.account_id}")
            key = self._creative_keys.get(creative.op_id)
            if key is None:
                raise ValueError(f"{creative.op_id!r} is not a creative of this job")
            return {"creative": key}
        if isinstance(creative, str):
            return {"creative_id": creative}
        return {}


def _spec(model: type[BaseModel], fields: Mapping[str, Any], what: str, key: str | None) -> Any:
    """``model(**fields)``, or a :class:`BuildError` in the job files' words."""
    try:
        return model(**fields)
    except ValidationError as err:
        where = f"{what} {key!r}" if key else f"new {what}"
        raise BuildError(
            [
                Issue(
                    tuple(error["loc"]),
                    schema_message(error),
                    error.get("input") if error["type"] != "missing" else None,
                    f"schema.{error['type']}",
                    file=where,
                    has_value=error["type"] != "missing",
                )
                for error in err.errors(include_url=False)
            ]
        ) from None

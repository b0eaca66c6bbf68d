"""Typed specs of the objects a job creates: Campaign, AdSet, AdCreative, Ad (+ matrix expansion).

Field names are the Graph parameter names (S003 §Ad Account, Ad Campaigns / Adsets / Ad Creatives / Ads), so a
spec reads like the API reference and ``to_params()`` is a plain projection. Enums are ``Literal`` types so
the generated JSON Schema (``docs/job-schema.json``) gives editors completion. Every model forbids unknown
fields (a typo is an error naming the field); ``extra_params`` passes any other Graph parameter through
unchanged.

Structural rules (types, enums, required fields) are pydantic's; the documented cross-field rules (1885621,
bid caps, messaging destinations, ice-breaker lengths…) live in :mod:`bulk_engine.operations.rules` and run
on the exact parameters each operation will send.

Defaults that differ from Graph, on purpose: ``status`` defaults to ``PAUSED`` (Graph's default is
``ACTIVE``): a bulk tool should not start spending unless asked.

Names may use placeholders, replaced per expanded object: ``{n}`` (1-based repeat index of the campaign),
``{campaign}``, ``{ad_set}``, ``{audience}``, ``{creative}`` (see :data:`NAME_PLACEHOLDERS`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from bulk_engine.protocol import catalog

from .base import Issue
from .schema_words import schema_message

__all__ = [
    "NAME_PLACEHOLDERS",
    "AdCreativeSpec",
    "AdSetMatrix",
    "AdSetSpec",
    "AdSetTemplate",
    "AdSpec",
    "AudienceSpec",
    "CampaignSpec",
    "render_name",
]

# Enums come from the shared catalog (the simulator's enum rules use the same tuples). mypy sees ``str`` (a
# Literal cannot be built from a variable statically); pydantic and the JSON Schema see the Literal.
if TYPE_CHECKING:
    Objective: TypeAlias = str
    SpecialAdCategory: TypeAlias = str
    BuyingType: TypeAlias = str
    BidStrategy: TypeAlias = str
    BillingEvent: TypeAlias = str
    OptimizationGoal: TypeAlias = str
    DestinationType: TypeAlias = str
else:
    Objective = Literal[catalog.OBJECTIVES]
    SpecialAdCategory = Literal[catalog.SPECIAL_AD_CATEGORIES]
    BuyingType = Literal[catalog.BUYING_TYPES]
    BidStrategy = Literal[catalog.BID_STRATEGIES]
    BillingEvent = Literal[catalog.BILLING_EVENTS]
    OptimizationGoal = Literal[catalog.OPTIMIZATION_GOALS]
    DestinationType = Literal[catalog.DESTINATION_TYPES]
CreateStatus = Literal["ACTIVE", "PAUSED"]
GraphTime = str | int
"""A Graph datetime: ``2015-03-12 23:59:59-07:00``, ``2015-03-12 23:59:59 PDT``, ISO 8601 or UNIX seconds."""
Cents = int
ObjectId = str

NAME_PLACEHOLDERS: Final = frozenset({"n", "campaign", "ad_set", "audience", "creative"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")

_MODEL = ConfigDict(frozen=True, extra="forbid")


def job_model_config(title: str) -> ConfigDict:
    """The config of every job model: frozen, unknown fields refused, titled for the JSON Schema."""
    return ConfigDict(frozen=True, extra="forbid", title=title)


_NAME = Field(min_length=1, max_length=400)
_EXTRA: Any = Field(
    default_factory=dict,
    description="Other Graph parameters, sent unchanged (they override the typed fields of the same name).",
)


@functools.cache
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    field = model.model_fields[name]
    # the field itself carries the constraints (ge=0, max_length…) as an annotation
    annotated: Any = Annotated[field.annotation, field]
    return TypeAdapter(annotated)


class _WithExtraParams(BaseModel):
    """A spec whose ``extra_params`` may override its typed fields — with values those fields accept.

    Without this check ``extra_params: {objective: [..]}`` would slip a list past the ``objective`` enum into
    every rule that reads the parameter.
    """

    @field_validator("extra_params", check_fields=False)
    @classmethod
    def _typed_overrides(cls, extra: dict[str, Any]) -> dict[str, Any]:
        problems: list[str] = []
        for key, value in extra.items():
            if key == "extra_params" or key not in cls.model_fields:
                continue
            try:
                _field_adapter(cls, key).validate_python(value)
            except ValidationError as err:
                problems.append(f"{key} {schema_message(err.errors(include_url=False)[0])}")
        if problems:
            raise ValueError("overrides a typed field with a value it does not take: " + "; ".join(problems))
        return extra


def render_name(template: str, values: Mapping[str, object]) -> str:
    """Replace ``{placeholder}`` s that ``values`` knows; leave any other text alone."""
    if "{" not in template:
        return template
    return _PLACEHOLDER.sub(
        lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template
    )


def name_issues(template: str, allowed: frozenset[str], path: tuple[str | int, ...]) -> Iterator[Issue]:
    for match in _PLACEHOLDER.finditer(template):
        if match.group(1) not in allowed:
            yield Issue(
                path,
                f"unknown name placeholder {{{match.group(1)}}}; allowed here: "
                + ", ".join("{" + p + "}" for p in sorted(allowed)),
                template,
                "name.placeholder",
            )


def _params(model: BaseModel, exclude: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in type(model).model_fields:
        if key in exclude or key == "extra_params":
            continue
        value = getattr(model, key)
        if value is None:
            continue
        out[key] = value.model_dump(mode="json", exclude_none=True) if isinstance(value, BaseModel) else value
    out.update(getattr(model, "extra_params", {}) or {})
    return out


# --- creatives ----------------------------------------------------------------------------------------------
class AdCreativeSpec(_WithExtraParams):
    """An ad creative (S003 §Ad Account Ad Creatives): immutable once created except ``name``/status.

    Click-to-message creatives (seeds 000–002) put the CTA in ``object_story_spec.link_data.call_to_action``
    (``{"type": "MESSAGE_PAGE", "value": {"app_destination": "MESSENGER"}}``) or, for multidestination, in
    ``asset_feed_spec`` with ``optimization_type: DOF_MESSAGING_DESTINATION``; greetings and ice breakers go
    in ``page_welcome_message`` (an object, or a JSON string as in S001).
    """

    model_config = job_model_config("AdCreative")

    name: str | None = Field(None, max_length=400)
    object_story_spec: dict[str, Any] | None = None
    object_story_id: str | None = Field(None, description="<PAGE_ID>_<POST_ID> of an existing post")
    object_id: str | None = None
    asset_feed_spec: dict[str, Any] | None = None
    degrees_of_freedom_spec: dict[str, Any] | None = None
    call_to_action: dict[str, Any] | None = None
    instagram_user_id: str | None = None
    page_welcome_message: dict[str, Any] | list[Any] | str | None = None
    image_hash: str | None = None
    image_url: str | None = None
    image: str | None = Field(
        None,
        description="Key of an image in the task's `images` (becomes image_hash, or image_url for a URL)",
    )
    url_tags: str | None = None
    privacy_url: str | None = None
    authorization_category: str | None = None
    contextual_multi_ads: dict[str, Any] | None = None
    adlabels: list[dict[str, Any]] | None = None
    extra_params: dict[str, Any] = _EXTRA

    def to_params(self) -> dict[str, Any]:
        return _params(self, set())


# --- ads ----------------------------------------------------------------------------------------------------
class AdSpec(_WithExtraParams):
    """An ad (S003 §Ad Account Ads). Exactly one of ``creative`` (a key of the task's ``creatives``),
    ``creative_id`` (an existing creative) or ``creative_spec`` (an inline creative)."""

    model_config = job_model_config("Ad")

    name: str = _NAME
    status: CreateStatus = "PAUSED"
    creative: str | None = Field(None, description="Key of a creative in the task's `creatives`")
    creative_id: ObjectId | None = None
    creative_spec: AdCreativeSpec | None = None
    conversion_domain: str | None = None
    tracking_specs: list[dict[str, Any]] | None = None
    adlabels: list[dict[str, Any]] | None = None
    ad_schedule_start_time: GraphTime | None = None
    ad_schedule_end_time: GraphTime | None = None
    extra_params: dict[str, Any] = _EXTRA

    def to_params(self) -> dict[str, Any]:
        return _params(self, {"creative", "creative_id", "creative_spec"})


# --- ad sets ------------------------------------------------------------------------------------------------
class _AdSetFields(_WithExtraParams):
    model_config = _MODEL

    status: CreateStatus = "PAUSED"
    billing_event: BillingEvent
    optimization_goal: OptimizationGoal | None = None
    destination_type: DestinationType | None = Field(
        None,
        description="MESSENGER (click to Messenger), INSTAGRAM_DIRECT (click to Instagram), WHATSAPP (click to "
        "WhatsApp) or MESSAGING_* (click to multidestination) for messaging ads",
    )
    bid_strategy: BidStrategy | None = None
    bid_amount: Cents | None = Field(None, ge=0)
    bid_constraints: dict[str, Any] | None = None
    daily_budget: Cents | None = Field(None, ge=0, description="In cents (minor currency unit)")
    lifetime_budget: Cents | None = Field(None, ge=0, description="In cents; needs end_time")
    start_time: GraphTime | None = None
    end_time: GraphTime | None = None
    targeting: dict[str, Any] | None = None
    promoted_object: dict[str, Any] | None = None
    daily_min_spend_target: Cents | None = Field(None, ge=0)
    daily_spend_cap: Cents | None = Field(None, ge=0)
    lifetime_min_spend_target: Cents | None = Field(None, ge=0)
    lifetime_spend_cap: Cents | None = Field(None, ge=0)
    frequency_control_specs: list[dict[str, Any]] | None = None
    attribution_spec: list[dict[str, Any]] | None = None
    is_dynamic_creative: bool | None = None
    dsa_beneficiary: str | None = None
    dsa_payor: str | None = None
    adlabels: list[dict[str, Any]] | None = None
    extra_params: dict[str, Any] = _EXTRA


class AdSetSpec(_AdSetFields):
    """An ad set (S003 §Ad Account Adsets) and its ads. ``campaign_id`` is filled in by the tree."""

    model_config = job_model_config("AdSet")

    name: str = _NAME
    ads: list[AdSpec] = Field(default_factory=list)

    def to_params(self) -> dict[str, Any]:
        return _params(self, {"ads"})


class AdSetTemplate(_AdSetFields):
    """The ad set every audience of a matrix starts from (the audience overrides targeting and budgets)."""

    model_config = job_model_config("AdSetTemplate")

    name: str = Field("{campaign} - {audience}", min_length=1, max_length=400)

    def to_params(self) -> dict[str, Any]:
        return _params(self, set())


class AudienceSpec(BaseModel):
    """One audience of a matrix: becomes one ad set (template + these fields)."""

    model_config = job_model_config("Audience")

    name: str = _NAME
    targeting: dict[str, Any]
    daily_budget: Cents | None = Field(None, ge=0)
    lifetime_budget: Cents | None = Field(None, ge=0)
    bid_amount: Cents | None = Field(None, ge=0)
    promoted_object: dict[str, Any] | None = None

    def overrides(self) -> dict[str, Any]:
        return _params(self, {"name"})


class AdSetMatrix(BaseModel):
    """``audiences × creatives``: one ad set per audience, one ad per creative in each of them.

    "These 3 audiences × these 4 creatives" is 3 ad sets and 12 ads; with ``repeat`` on the campaign a few
    lines describe thousands of objects.
    """

    model_config = job_model_config("AdSetMatrix")

    template: AdSetTemplate
    audiences: list[AudienceSpec] = Field(min_length=1)
    creatives: list[str] = Field(min_length=1, description="Keys of the task's `creatives`")
    ad_name: str = Field("{audience} - {creative}", min_length=1, max_length=400)
    ad_status: CreateStatus = "PAUSED"
    ad_params: dict[str, Any] = Field(default_factory=dict, description="Other Graph parameters of every ad")


# --- campaigns ----------------------------------------------------------------------------------------------
class CampaignSpec(_WithExtraParams):
    """A campaign (S003 §Ad Account, Ad Campaigns) with its ad sets (explicit and/or a matrix).

    ``advantage_plus: true`` asks for an Advantage+ campaign (S003 §Advantage+ Campaign Experience): the job is
    checked for the three levers — campaign budget with a supported bid strategy (budget), no placement
    targeting in any ad set (placement) — and every ad set gets ``targeting_automation.advantage_audience = 1``
    (audience), so the campaign reads ``advantage_state`` ADVANTAGE_PLUS_* / ``smart_promotion_type``
    GUIDED_CREATION. ``repeat`` creates N copies of the whole tree (use ``{n}`` in names).
    """

    model_config = job_model_config("Campaign")

    name: str = _NAME
    objective: Objective
    special_ad_categories: list[SpecialAdCategory] = Field(
        description="Required by Graph: [] or [NONE] when no category applies"
    )
    special_ad_category_country: list[str] | None = None
    status: CreateStatus = "PAUSED"
    buying_type: BuyingType | None = None
    bid_strategy: BidStrategy | None = None
    daily_budget: Cents | None = Field(None, ge=0, description="Campaign budget in cents (Advantage+ budget)")
    lifetime_budget: Cents | None = Field(None, ge=0)
    spend_cap: Cents | None = Field(None, ge=0)
    start_time: GraphTime | None = None
    stop_time: GraphTime | None = None
    promoted_object: dict[str, Any] | None = None
    is_adset_budget_sharing_enabled: bool | None = None
    adlabels: list[dict[str, Any]] | None = None
    advantage_plus: bool = False
    repeat: int = Field(1, ge=1, le=100_000)
    ad_sets: list[AdSetSpec] = Field(default_factory=list)
    ad_set_matrix: AdSetMatrix | None = None
    extra_params: dict[str, Any] = _EXTRA

    def to_params(self) -> dict[str, Any]:
        return _params(self, {"advantage_plus", "repeat", "ad_sets", "ad_set_matrix"})

"""Documented Graph rules checked locally, before any call (issue 5: "validation happens before any call").

Each check works on the Graph parameters an operation will send (so a matrix-expanded ad set is checked
exactly as it will go out) and yields :class:`~bulk_engine.operations.base.Issue` s whose ``path`` names the
parameter. Rule ids and codes mirror the simulator's table (``bulk_engine/simulator/validation/``), which
cites the seed section of each rule; when a rule mirrors a documented Graph error the issue carries its
code/subcode (e.g. ``1885621`` "You can only set an ad set budget or a campaign budget").

Only rules that can be decided from the job itself are here; rules that need server state (does the
campaign exist, is the Page connected to WhatsApp, is the account allowed to use this Instagram account)
are left to Graph and come back as ``failed`` outcomes with the full error.

One module per object type around a shared core, as the simulator's checks are split
(``bulk_engine/simulator/validation/``): ``core`` (the rule table, :func:`issue`, small readers and the
checks several types share), ``campaigns``, ``adsets``, ``creatives`` and ``ads``; this package re-exports
the public names, so ``from bulk_engine.operations.rules import RULES, adset_rules, ...`` keeps working.
"""

from __future__ import annotations

from bulk_engine.protocol.catalog import ADVANTAGE_STATES, PLACEMENT_KEYS
from bulk_engine.protocol.spec_fields import parse_time

from .ads import ad_rules
from .adsets import adset_rules
from .campaigns import campaign_rules
from .core import RULES, Path, Rule, issue
from .creatives import creative_rules

__all__ = [
    "ADVANTAGE_STATES",
    "PLACEMENT_KEYS",
    "RULES",
    "Path",
    "Rule",
    "ad_rules",
    "adset_rules",
    "campaign_rules",
    "creative_rules",
    "issue",
    "parse_time",
]

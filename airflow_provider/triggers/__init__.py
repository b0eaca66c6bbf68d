"""Wait-only triggers: they read the Graph API at most, never write, and may safely run more than once."""

from .async_requests import AsyncRequestSetTrigger
from .throttle import ThrottleCooldownTrigger

__all__ = ["AsyncRequestSetTrigger", "ThrottleCooldownTrigger"]

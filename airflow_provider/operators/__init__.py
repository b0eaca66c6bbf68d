"""Operators of the Meta bulk-engine provider (deferrable by default)."""

from .bulk import MetaBulkOperator

__all__ = ["MetaBulkOperator"]

"""pydantic's error types in the project's words ("must be a mapping (key: value)", "must be a whole number").

Job files are written by people who never met pydantic: "Input should be a valid dictionary or instance of
CampaignSpec" becomes "must be a mapping (key: value)". The rule id keeps pydantic's type
(``schema.<type>``), so messages can change without breaking anyone who matches on rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["schema_message"]

# pydantic error types → the project's words (``ctx`` fills the braces)
_MESSAGES: dict[str, str] = {
    "missing": "required field is missing",
    "extra_forbidden": (
        "unknown field (not part of this object; Graph parameters without a typed field go in extra_params)"
    ),
    "model_type": "must be a mapping (key: value)",
    "model_attributes_type": "must be a mapping (key: value)",
    "dict_type": "must be a mapping (key: value)",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "set_type": "must be a list",
    "string_type": "must be text",
    "string_unicode": "must be valid text",
    "string_sub_type": "must be text",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number (no fractional part)",
    "int_parsing_size": "is too large a number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "none_required": "must be null",
    "string_too_short": "must have at least {min_length} character(s)",
    "string_too_long": "must have at most {max_length} characters",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} items",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "string_pattern_mismatch": "must match the pattern {pattern}",
    "literal_error": "must be one of: {expected}",
    "enum": "must be one of: {expected}",
    "union_tag_invalid": "type must be one of: {expected_tags}",
    "union_tag_not_found": "type is required: one of create, status, copy, migrate, messages, operations",
    "json_invalid": "must be valid JSON",
    "url_parsing": "must be a URL",
}


def schema_message(error: Mapping[str, Any]) -> str:
    """The words for one pydantic error (an item of ``ValidationError.errors()``)."""
    kind = error["type"]
    template = _MESSAGES.get(kind)
    context = error.get("ctx") or {}
    if template is not None:
        try:
            text = template.format(**{k: str(v) for k, v in context.items()})
        except (KeyError, IndexError, ValueError):
            text = template.split(" {", 1)[0]
        return text.replace("'", "") if kind in ("literal_error", "enum", "union_tag_invalid") else text
    message = str(error["msg"])
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    if message.startswith("Input should be "):  # a type this table does not know yet: same wording
        return "must be " + message.removeprefix("Input should be ")
    return message

"""The Graph API error envelope, as the simulator answers it.

S003 §Handling Errors → Error Responses: ``{"error": {"message", "type", "code", "error_subcode",
"error_user_title", "error_user_msg", "fbtrace_id"}}`` plus ``is_transient`` and
``error_data.blame_field_specs`` seen in the validation examples. Messages carry the ``(#code)`` prefix
as in the seed samples.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any


@dataclass
class GraphAPIError(Exception):
    """An error the simulator returns as ``{"error": {...}}`` with ``http_status``."""

    code: int
    message: str
    subcode: int | None = None
    type: str = "OAuthException"
    http_status: int = 400
    user_title: str | None = None
    user_msg: str | None = None
    blame_field_specs: list[list[str]] | None = None
    is_transient: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        """The JSON error envelope, with a fresh ``fbtrace_id`` like Meta's."""
        text = self.message if self.message.startswith("(#") else f"({'#'}{self.code}) {self.message}"
        err: dict[str, Any] = {"message": text, "type": self.type, "code": self.code}
        if self.subcode is not None:
            err["error_subcode"] = self.subcode
        err["is_transient"] = self.is_transient
        if self.user_title is not None:
            err["error_user_title"] = self.user_title
        if self.user_msg is not None:
            err["error_user_msg"] = self.user_msg
        if self.blame_field_specs:
            err["error_data"] = {"blame_field_specs": self.blame_field_specs}
        err["fbtrace_id"] = "A" + secrets.token_urlsafe(14)
        return {"error": err}


def invalid_param(
    message: str,
    field_name: str | None = None,
    *,
    subcode: int | None = None,
    user_title: str | None = None,
    user_msg: str | None = None,
) -> GraphAPIError:
    """Code 100 "Invalid parameter" (S003 §Handling Errors), blaming ``field_name`` when given."""
    return GraphAPIError(
        code=100,
        message=f"(#100) {message}",
        subcode=subcode,
        type="OAuthException",
        user_title=user_title,
        user_msg=user_msg or (message if subcode else None),
        blame_field_specs=[[field_name]] if field_name else None,
    )


def missing_param(field_name: str) -> GraphAPIError:
    """Code 100 for a required parameter that is absent (Graph answers 100, not 194, on object edges)."""
    return invalid_param(f"The parameter {field_name} is required", field_name)


def rule_error(
    code: int, subcode: int | None, title: str, msg: str, field_name: str | None = None
) -> GraphAPIError:
    """A documented validation rule broken: code/subcode with the user title and message."""
    return GraphAPIError(
        code=code,
        message=f"(#{code}) Invalid parameter" if code == 100 else f"(#{code}) {title}",
        subcode=subcode,
        user_title=title,
        user_msg=msg,
        blame_field_specs=[[field_name]] if field_name else None,
    )


def unknown_object(object_id: str, method: str = "GET") -> GraphAPIError:
    """Code 100 subcode 33: the node does not exist or the token cannot see it (S003 §Handling Errors:
    "100, subcode 33 | Unsupported post request."; Graph names the request's method)."""
    return GraphAPIError(
        code=100,
        subcode=33,
        message=(
            f"(#100) Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation."
        ),
        type="GraphMethodException",
    )


def invalid_token(
    message: str = "Invalid OAuth access token - Cannot parse access token", subcode: int | None = None
) -> GraphAPIError:
    """Code 190 (S003 §Handling Errors: "Invalid OAuth 2.0 Access Token"), HTTP 401 like Meta's edge."""
    return GraphAPIError(
        code=190,
        subcode=subcode,
        message=f"(#190) {message}",
        type="OAuthException",
        http_status=401,
        extra_headers={"WWW-Authenticate": f'OAuth "Facebook Platform" "invalid_token" "{message}"'},
    )

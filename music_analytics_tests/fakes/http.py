"""What the local fakes of remote APIs share."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Response


@dataclass(frozen=True)
class ScriptedResponse:
    """A one-off answer: `body` dict/list is sent as JSON, str/bytes as they are."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_response(self) -> Response:
        if isinstance(self.body, (dict, list)):
            body, content_type = json.dumps(self.body), "application/json"
        else:
            body, content_type = self.body or "", "text/plain"
        return Response(
            body, status=self.status, headers=dict(self.headers), content_type=content_type
        )

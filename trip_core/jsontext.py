"""JSON from bytes someone else stored or sent: every way parsing can fail is a ValueError.

json.loads raises RecursionError on a body nested deeper than the interpreter's recursion limit (a few
kilobytes of "[" suffice), which handlers catching ValueError would let through as a function error.
"""

from __future__ import annotations

import json
from typing import Any


def loads(data: str | bytes) -> Any:
    try:
        return json.loads(data)
    except RecursionError as error:
        raise ValueError("JSON nested too deeply to parse") from error

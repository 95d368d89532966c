"""JSON for the API and the audit export: Django's encoder keeps only milliseconds of a
datetime; audit timestamps, cursors and versions need all six digits."""

from datetime import datetime
from typing import Any

from ninja.responses import NinjaJSONEncoder


class PreciseJSONEncoder(NinjaJSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, datetime):
            text = o.isoformat()
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        return super().default(o)

"""Gameball's OpenAPI request schemas for orders, as a check tests use.

The schemas are copied unchanged from Gameball's docs repository into
``tests/fixtures/gameball_openapi_orders.json`` (its ``_source`` names the file and the commit).
OpenAPI 3.1 schemas are JSON Schema 2020-12, checked here with ``jsonschema`` (the ``test``
extra). ``format: date-time`` is checked as RFC 3339 (a real date, seconds, a zone), which
``jsonschema`` leaves unchecked without an optional package.
"""

import json
import re
from datetime import datetime
from pathlib import Path

import jsonschema

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "gameball_openapi_orders.json"
_SCHEMAS = json.loads(FIXTURE.read_text(encoding="utf-8"))
SOURCE = _SCHEMAS["_source"]
ORDERS = "POST /api/v4.0/integrations/orders"
BATCH_ORDERS = "POST /api/v4.0/integrations/batch/orders"
ORDER_PREVIEW = "POST /api/v4.0/integrations/orders/reward-preview"

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
_FORMATS = jsonschema.FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value):
    if not isinstance(value, str):
        return True  # "type" speaks for other values
    if not _RFC3339.match(value):
        return False
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # a month 13 raises
    return True


def schema(operation=ORDERS):
    """The request body schema of ``operation`` (``ORDERS``, ``BATCH_ORDERS``, ...)."""
    return _SCHEMAS[operation]


def schema_problems(body, operation=ORDERS):
    """The rules of ``operation``'s request schema that ``body`` breaks, sorted (none: [])."""
    validator = jsonschema.Draft202012Validator(schema(operation), format_checker=_FORMATS)
    return sorted(
        f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in validator.iter_errors(body)
    )

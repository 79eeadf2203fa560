"""The collaborators every resource instance receives at start-up (built by `create_app`)."""
from __future__ import annotations

import dataclasses
from typing import Any

from todopy.accounts import Accounts
from todopy.admission import StreamAdmission
from todopy.budget import WriteBudget
from todopy.db import ConnectionPool
from todopy.metrics import Metrics
from todopy.realtime.dispatcher import Dispatcher
from todopy.realtime.ringer import Ringer
from todopy.realtime.streams import Streams
from todopy.settings import Settings


@dataclasses.dataclass
class Services:
    """What views need, handed to every resource instance at start-up."""

    settings: Settings
    pool: ConnectionPool
    accounts: Accounts
    dispatcher: Dispatcher
    ringer: Ringer
    streams: Streams
    metrics: Metrics
    admission: StreamAdmission          # streams per user and descriptors (todopy/admission.py)
    budget: WriteBudget                 # changed rows per user (todopy/budget.py)
    api_description: dict[str, Any]     # the OpenAPI document (todopy/openapi.py), built from the routes

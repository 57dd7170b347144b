"""The accounts app's bridge to the audit trail: one call shape for its services."""
from __future__ import annotations

from typing import Any

from audit.services import audit_record


def audit(action: str, *, data: dict[str, Any], account=None, actor_type: str = "system", actor_id: str = "accounts") -> None:
    audit_record(actor_type=actor_type, actor_id=actor_id, action=action, account=account, obj=account, data=data)

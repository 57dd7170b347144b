"""Permission classes over the token's ``permissions`` claim (SPEC §5 access table).

Which *account* a token may address is decided by ``selectors.account_resolve`` (own account
unless ``admin``); these classes decide which endpoints it may call at all.
"""
from rest_framework.permissions import BasePermission

from opitios.config import current_config

from .auth import token_permissions


class HasClaim(BasePermission):
    """Grant when the token carries any of ``claims`` (``admin`` always passes)."""

    claims: tuple[str, ...] = ()
    message = "Your token lacks the permission this endpoint needs."

    def has_permission(self, request, view) -> bool:
        perms = token_permissions(request)
        return "admin" in perms or any(c in perms for c in self.claims)


def require_claims(*claims: str) -> type[HasClaim]:
    return type(f"Has_{'_or_'.join(claims)}", (HasClaim,), {"claims": claims})


IsAdmin = require_claims("admin")
HasAccountAccess = require_claims("account_access")
HasTrading = require_claims("trading")
HasBulkTrading = require_claims("bulk_trading")


class MarketDataAccess(HasClaim):
    """Public when ``api.market_data_public`` (the default), else ``market_data`` or ``admin``."""

    claims = ("market_data",)

    def has_permission(self, request, view) -> bool:
        if current_config().api.market_data_public:
            return True
        return super().has_permission(request, view)


def is_admin(request) -> bool:
    return "admin" in token_permissions(request)

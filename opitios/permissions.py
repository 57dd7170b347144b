"""Permission classes over the token's ``permissions`` claim. The trading API's own classes (which
endpoints a claim opens) are in ``trading/permissions.py``; ``IsAdmin`` guards every app's admin endpoints."""
from rest_framework.permissions import BasePermission

from opitios.auth import token_permissions


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


def is_admin(request) -> bool:
    return "admin" in token_permissions(request)

"""Which trading endpoints a token may call, by its ``permissions`` claim (docs/api.md, "Access").

Which *account* a token may address is decided by ``selectors.account_resolve`` (own account
unless ``admin``); these classes decide which endpoints it may call at all.
"""
from opitios.config import current_config
from opitios.permissions import HasClaim, require_claims

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

"""OpenAPI extensions: the bearer JWT scheme of ``ClaimsJWTAuthentication``."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ClaimsJWTScheme(OpenApiAuthenticationExtension):
    target_class = "opitios.auth.ClaimsJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A JWT with claims user_id, account_id (optional), permissions and exp, minted by "
            "`manage.py issue_token` or the external provider.",
        }

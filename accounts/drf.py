"""DRF authentication for the native API: API key → Principal, then the per-key rate limit."""

from dataclasses import dataclass

from rest_framework.authentication import BaseAuthentication

from . import ratelimit
from .keys import Principal, authenticate, extract_raw_key


@dataclass(frozen=True)
class KeyUser:
    """The `request.user` of an API-key request: only what views need, no DB row."""

    principal: Principal
    is_authenticated: bool = True
    is_active: bool = True

    @property
    def pk(self) -> int:
        return self.principal.user_id

    id = pk


class APIKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        principal = authenticate(extract_raw_key(request.headers))
        decision = ratelimit.hit(principal.key_id, principal.rpm)
        request._request.ratelimit_headers = decision.headers()
        decision.raise_if_denied()
        return KeyUser(principal), principal

    def authenticate_header(self, request):
        return 'Bearer realm="api"'

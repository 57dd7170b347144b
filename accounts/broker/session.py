"""HTTP under alpaca-py: one keep-alive session per account, bounded by ``max_connections``,
with explicit timeouts and no retries."""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies

_timeout_override = threading.local()


class TimeoutSession(requests.Session):
    """alpaca-py calls ``session.request`` without a timeout; this one always has one."""

    def __init__(self, *, max_connections: int, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.default_timeout = timeout
        self._environment: dict[tuple, tuple[dict, str | None]] = {}
        # pool_maxsize bounds the kept-alive connections per host; max_retries=0: no urllib3 retries.
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max_connections, max_retries=0)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method, url, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = getattr(_timeout_override, "value", None) or self.default_timeout
        return super().request(method, url, **kwargs)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        """As requests does, but the environment (proxy variables, CA bundle) is read once per
        origin: requests walks the whole of ``os.environ`` on every call, about a millisecond
        on the order path."""
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        no_proxy = proxies.get("no_proxy") if proxies is not None else None
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, no_proxy)
        found = self._environment.get(key)
        if found is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            found = self._environment[key] = (get_environ_proxies(url, no_proxy=no_proxy), bundle)
        env_proxies, bundle = found
        if proxies is not None:
            for k, v in env_proxies.items():
                proxies.setdefault(k, v)
        if verify is True or verify is None:
            verify = bundle or verify
        return {
            "proxies": merge_setting(proxies, self.proxies),
            "stream": merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": merge_setting(cert, self.cert),
        }


@contextmanager
def read_timeout(read_seconds: float | None) -> Iterator[None]:
    if read_seconds is None:
        yield
        return
    previous = getattr(_timeout_override, "value", None)
    _timeout_override.value = (min(settings.BROKER_CONNECT_TIMEOUT, read_seconds), read_seconds)
    try:
        yield
    finally:
        _timeout_override.value = previous

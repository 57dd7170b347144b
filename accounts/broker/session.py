"""HTTP under alpaca-py: one keep-alive session per account, bounded by ``max_connections``,
with explicit timeouts and no retries.

alpaca-py sends every call as ``session.request(method, url, headers=..., json=/params=...,
allow_redirects=False)``. ``TimeoutSession.request`` sends such a call straight to the mounted
``HTTPAdapter`` (the kept-alive urllib3 pool), skipping what ``Session.request`` adds around it and
the Alpaca API does not use: the ``Request`` object and its re-preparation with the session's
cookies, ``~/.netrc`` auth and hooks; the cookie jar's update from each response; the
redirect look-ahead (docs/performance.md, "The broker call"). The adapter still does the sending
and turns every urllib3 failure into the requests exception ``Session.request`` would raise, so
the adapter's error mapping is unchanged. Any other call (redirects, cookies, auth, files, hooks)
takes ``Session.request`` as before."""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest
from requests.sessions import merge_setting
from requests.structures import CaseInsensitiveDict
from requests.utils import get_environ_proxies

_timeout_override = threading.local()


class TimeoutSession(requests.Session):
    """alpaca-py calls ``session.request`` without a timeout; this one always has one."""

    def __init__(self, *, max_connections: int, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.default_timeout = timeout
        self._environment: dict[tuple, tuple[dict, str | None]] = {}
        # The proxies, verify, cert and stream a call without its own send with, per origin (the
        # session's own settings are not changed after it is built).
        self._send_settings: dict[tuple[str, str], dict] = {}
        # pool_maxsize bounds the kept-alive connections per host; max_retries=0: no urllib3 retries.
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max_connections, max_retries=0)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method, url, params=None, data=None, headers=None, json=None, timeout=None, allow_redirects=True, **other):
        if timeout is None:
            timeout = getattr(_timeout_override, "value", None) or self.default_timeout
        if allow_redirects or any(v is not None for v in other.values()) or self.cookies or self.auth or self.params or any(self.hooks.values()):
            return super().request(method, url, params=params, data=data, headers=headers, json=json, timeout=timeout,
                                   allow_redirects=allow_redirects, **other)
        prepared = PreparedRequest()
        prepared.method = method.upper()
        prepared.url = _prepared_url(url) if not params else _prepare_url(url, params)
        merged = CaseInsensitiveDict(self.headers)  # the session's headers, then the call's (None removes one), as merge_setting does
        merged.update(headers or ())
        prepared.prepare_headers({k: v for k, v in merged.items() if v is not None})
        prepared.prepare_body(data or {}, None, json)
        parts = urlsplit(prepared.url)
        send = self._send_settings.get((parts.scheme, parts.netloc))
        if send is None:
            send = self._send_settings[(parts.scheme, parts.netloc)] = self.merge_environment_settings(prepared.url, {}, None, None, None)
        response = self.get_adapter(prepared.url).send(prepared, timeout=timeout, **send)
        response.content  # noqa: B018 - read the body now, as Session.send does without stream=True
        return response

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


def _prepare_url(url: str, params) -> str:
    prepared = PreparedRequest()
    prepared.prepare_url(url, params)
    return prepared.url


@lru_cache(maxsize=256)
def _prepared_url(url: str) -> str:
    """A URL without parameters prepares the same every time (the order endpoint, the account's)."""
    return _prepare_url(url, None)


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

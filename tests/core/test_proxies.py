"""Trusted proxies (`MADBASE_TRUSTED_PROXIES`): who the client is and which origin it used."""

from __future__ import annotations

import pytest

from madbase.config import ConfigError, load_settings
from madbase.core.proxies import TrustedProxies, public_origin


def test_client_ip_believes_only_trusted_peers() -> None:
    none = TrustedProxies.parse("")
    assert none.client_ip("198.51.100.1", "203.0.113.9") == "198.51.100.1"
    proxies = TrustedProxies.parse("10.0.0.0/8, 127.0.0.1 ::1")
    assert proxies.client_ip("198.51.100.1", "203.0.113.9") == "198.51.100.1"  # the peer is no proxy
    assert proxies.client_ip("10.2.3.4", "203.0.113.9") == "203.0.113.9"
    assert proxies.client_ip("127.0.0.1", "1.1.1.1, 203.0.113.9, 10.9.9.9") == "203.0.113.9"
    assert proxies.client_ip("::1", "2001:db8::5") == "2001:db8::5"
    assert proxies.client_ip("10.2.3.4", "garbage, 10.1.1.1") == "10.1.1.1"
    assert proxies.client_ip("10.2.3.4", "") == "10.2.3.4"
    assert proxies.trusts("::ffff:10.1.2.3") and not proxies.trusts("11.0.0.1") and not proxies.trusts("x")


def test_public_origin_uses_forwarded_headers_only_when_trusted() -> None:
    headers = {"host": "127.0.0.1:54321", "x-forwarded-host": "api.example.com", "x-forwarded-proto": "https"}
    assert public_origin(headers, "http", trusted=False) == ("http", "127.0.0.1:54321")
    assert public_origin(headers, "http", trusted=True) == ("https", "api.example.com")
    assert public_origin({"host": "a.example, b"}, "http", trusted=False) == ("http", "localhost")
    assert public_origin({"host": "h", "x-forwarded-host": "x.example/evil", "x-forwarded-proto": "ftp"}, "http",
                         trusted=True) == ("http", "localhost")
    assert public_origin({"x-forwarded-host": "one.example, two.example"}, "http", trusted=True)[1] == "one.example"


def test_malformed_setting_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="MADBASE_TRUSTED_PROXIES"):
        load_settings(trusted_proxies="10.0.0.0/8, not-a-network")
    assert load_settings(trusted_proxies="10.0.0.0/8").trusted_proxy_networks.trusts("10.1.1.1")

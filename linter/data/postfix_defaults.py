"""Postfix built-in parameter defaults that the traffic-path rules need.

Only the parameters the builder and rules read are listed; everything else is unknown here and
treated as empty. Values are per Postfix version where they changed.

Sources: `postconf -d` of Postfix 3.7.11 (Debian 12, run on the development machine) and the
parameter pages of postconf(5) (the 3.11 change of `postscreen_cache_map` to
`$default_cache_db_type`, as given in the project's facts catalog, PF01).
"""
from __future__ import annotations

from mailproxy_lint.model import Version

# name -> ((first version with this default, value), ...) oldest first
_DEFAULTS: dict[str, tuple[tuple[Version, str], ...]] = {
    "data_directory": ((Version((2, 5)), "/var/lib/postfix"),),
    # 3.11 introduced default_cache_db_type; Debian builds keep btree as its value
    "default_cache_db_type": ((Version((3, 11)), "btree"),),
    "postscreen_cache_map": (
        (Version((2, 8)), "btree:$data_directory/postscreen_cache"),
        (Version((3, 11)), "$default_cache_db_type:$data_directory/postscreen_cache"),
    ),
    "postscreen_cache_cleanup_interval": ((Version((2, 8)), "12h"),),
    "proxy_write_maps": (
        (Version((2, 5)),
         "$smtp_sasl_auth_cache_name $lmtp_sasl_auth_cache_name $address_verify_map $postscreen_cache_map"),
    ),
    "postscreen_upstream_proxy_protocol": ((Version((2, 10)), ""),),
    "smtpd_upstream_proxy_protocol": ((Version((2, 10)), ""),),
    "postscreen_upstream_proxy_timeout": ((Version((2, 10)), "5s"),),
    "smtpd_upstream_proxy_timeout": ((Version((2, 10)), "5s"),),
    "smtpd_tls_wrappermode": ((Version((2, 2)), "no"),),
    "smtpd_tls_security_level": ((Version((2, 3)), ""),),
    "inet_interfaces": ((Version((2, 0)), "all"),),
    "inet_protocols": ((Version((2, 2)), "all"),),
    "multi_instance_name": ((Version((2, 6)), ""),),
    "syslog_name": ((Version((2, 6)), "${multi_instance_name?{$multi_instance_name}:{postfix}}"),),
    "postscreen_greet_action": ((Version((2, 8)), "ignore"),),
}

NEWEST = Version((3, 11))


def default(name: str, version: Version | None = None) -> str | None:
    """The built-in default of `name` for `version` (the newest known when None), or None."""
    history = _DEFAULTS.get(name)
    if history is None:
        return None
    chosen = history[0][1]
    for since, value in history:
        if version is None or version >= since:
            chosen = value
    return chosen

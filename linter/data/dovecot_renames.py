"""Dovecot settings that 2.4 renamed or removed: the one table every check of 2.3 names reads.

Dovecot 2.4 rewrote its settings. A 2.3 name in a 2.4 configuration is an unknown setting and
doveconf refuses to start (unless `dovecot_config_version` is old enough for the "Obsolete
setting ... has been renamed to ..." compatibility path). Rules that meet a 2.3 name under 2.4
(removed syntax, unknown settings) take the replacement from here, so there is one list.

Source: Dovecot's "2.4 converted settings" upgrade notes (`2.4-converted-settings.inc`, as
summarised in facts-formats §1.7 and facts-rules VC06). Only the settings a mail-behind-proxy
configuration commonly carries are listed; this is not the whole 2.4 rename table.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rename:
    old: str  # the 2.3 name
    new: tuple[str, ...]  # the 2.4 name(s); several when 2.3's setting was split
    note: str = ""  # what else changes besides the name (meaning inverted, value form)

    def advice(self) -> str:
        """`ssl_server_cert_file` / `ssl_server_ca_file or ssl_client_ca_file`, plus the note."""
        names = " or ".join(f"`{n}`" for n in self.new)
        return f"{names} ({self.note})" if self.note else names


_FILE_VALUE = "a path, not 2.3's `<file` contents form"

# top-level (and filter) settings: 2.3 name -> what 2.4 calls it
SETTING_RENAMES: dict[str, Rename] = {r.old: r for r in (
    Rename("ssl_cert", ("ssl_server_cert_file",), _FILE_VALUE),
    Rename("ssl_key", ("ssl_server_key_file",), _FILE_VALUE),
    Rename("ssl_ca", ("ssl_server_ca_file", "ssl_client_ca_file"), "split by direction; " + _FILE_VALUE),
    Rename("ssl_dh", ("ssl_server_dh_file",), _FILE_VALUE),
    Rename("ssl_key_password", ("ssl_server_key_password",)),
    Rename("ssl_cert_username_field", ("ssl_server_cert_username_field",)),
    Rename("ssl_verify_client_cert", ("ssl_server_request_client_cert",)),
    Rename("ssl_prefer_server_ciphers", ("ssl_server_prefer_ciphers",)),
    Rename("disable_plaintext_auth", ("auth_allow_cleartext",),
           "meaning inverted: `disable_plaintext_auth = yes` is `auth_allow_cleartext = no`"),
)}

# fields of `inet_listener` blocks: 2.3 field -> 2.4 field
LISTENER_FIELD_RENAMES: dict[str, Rename] = {r.old: r for r in (
    Rename("address", ("listen",)),
)}

# sections 2.4 no longer has: name -> what replaces them
REMOVED_SECTIONS: dict[str, str] = {
    "plugin": "plugin settings are top-level settings in 2.4",
}

# every 2.4 replacement name, to tell a configuration that mixes both generations
NEW_NAMES: frozenset[str] = frozenset(n for r in SETTING_RENAMES.values() for n in r.new)


def rename_for(setting_key: str) -> Rename | None:
    """The rename behind a `DovecotConfig.settings` key, or None.

    Keys are section paths joined by `/` (`protocol imap/disable_plaintext_auth`,
    `service imap-login/inet_listener imaps/address`); the last part is the setting.
    """
    parts = setting_key.split("/")
    name = parts[-1]
    if len(parts) > 1 and parts[-2].startswith("inet_listener"):
        return LISTENER_FIELD_RENAMES.get(name)
    return SETTING_RENAMES.get(name)


def removed_section(setting_key: str) -> str | None:
    """The removed section a settings key lives in (`plugin/sieve` -> "plugin"), or None."""
    first = setting_key.split("/", 1)[0].split(" ", 1)[0]
    return first if "/" in setting_key and first in REMOVED_SECTIONS else None

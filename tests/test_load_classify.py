"""Which files the loader reads as which kind: names first, then the start of the text."""
from __future__ import annotations

from pathlib import Path

import pytest

from mailproxy_lint.load import classify
from mailproxy_lint.model import FileKind


def kind_of(tmp_path: Path, relative: str, text: str) -> FileKind | None:
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    found = classify(path) or classify(path, text)
    return found[0] if found else None


@pytest.mark.parametrize(("relative", "text"), [
    # dict-sql (iRedMail's shared-folder map), SQL passdb and LDAP files beside dovecot.conf
    ("dovecot/dovecot-share-folder.conf",
     "connect = host=127.0.0.1 dbname=vmail user=vmail password=x\nmap {\n  pattern = shared/$key\n}\n"),
    ("dovecot/dovecot-sql.conf.ext", "driver = mysql\npassword_query = SELECT 1\n"),
    ("dovecot/dovecot-ldap.conf.ext", "hosts = ldap\ndnpass = secret\nauth_bind = yes\n"),
])
def test_dovecot_auxiliary_files_are_not_read_as_dovecot_conf(tmp_path, relative, text):
    assert kind_of(tmp_path, relative, text) is None


@pytest.mark.parametrize(("relative", "text"), [
    ("dovecot/dovecot-mailboxes.conf", "namespace inbox {\n  mailbox Spam {\n    auto = subscribe\n  }\n}\n"),
    ("dovecot/local.conf", "protocols = imap\n"),
    ("dovecot/10-master.conf", "service imap-login {\n}\n"),
    ("etc/dovecot/conf.d/10-auth.conf", "auth_mechanisms = plain\n"),
])
def test_dovecot_fragments_are_read(tmp_path, relative, text):
    assert kind_of(tmp_path, relative, text) is FileKind.DOVECOT

"""Generated inputs for the benchmark: realistic small deployments and growing config trees.

Everything here writes into a directory the caller owns (a temporary directory); nothing is
written into the repository. The texts are plain configurations a user could have written —
each one is accepted by the real daemon (postconf 3.7, doveconf 2.3, haproxy 2.6) as is, so the
daemon timings are timings of a full, successful check and not of an early failure.
"""
from __future__ import annotations

from pathlib import Path

# --- a small, complete deployment: HAProxy in front of Postfix and Dovecot --------------------

SMALL_HAPROXY = """\
# HAProxy in front of one mail host: raw TCP, PROXY v2 to every backend.
global
    log stdout format raw local0
    maxconn 4096

defaults mail
    mode tcp
    log global
    option tcplog
    timeout connect 5s
    timeout client 31m
    timeout server 31m

frontend smtp
    bind :25
    default_backend postfix_postscreen

frontend submission
    bind :587
    default_backend postfix_submission

frontend submissions
    bind :465
    default_backend postfix_submissions

frontend imap
    bind :143
    default_backend dovecot_imap

frontend imaps
    bind :993
    default_backend dovecot_imaps

frontend sieve
    bind :4190
    default_backend dovecot_sieve

backend postfix_postscreen
    server mail1 10.0.0.10:10025 send-proxy-v2 check

backend postfix_submission
    server mail1 10.0.0.10:10587 send-proxy-v2 check

backend postfix_submissions
    server mail1 10.0.0.10:10465 send-proxy-v2 check

backend dovecot_imap
    server mail1 10.0.0.10:10143 send-proxy-v2 check

backend dovecot_imaps
    server mail1 10.0.0.10:10993 send-proxy-v2 check

backend dovecot_sieve
    server mail1 10.0.0.10:14190 send-proxy-v2 check
"""

SMALL_MAIN_CF = """\
# Postfix behind HAProxy: postscreen and submission read the PROXY header.
compatibility_level = 3.6
myhostname = mail.example.org
mydomain = example.org
myorigin = $mydomain
mydestination = localhost
inet_interfaces = all
inet_protocols = ipv4
mynetworks = 127.0.0.0/8 10.0.0.0/24
biff = no
append_dot_mydomain = no
readme_directory = no
recipient_delimiter = +
mailbox_size_limit = 0
message_size_limit = 52428800

smtpd_banner = $myhostname ESMTP
smtpd_tls_security_level = may
smtpd_tls_cert_file = /etc/ssl/certs/ssl-cert-snakeoil.pem
smtpd_tls_key_file = /etc/ssl/private/ssl-cert-snakeoil.key
smtp_tls_security_level = may
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination
smtpd_recipient_restrictions =
    permit_mynetworks,
    permit_sasl_authenticated,
    reject_unauth_destination
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth

postscreen_upstream_proxy_protocol = haproxy
postscreen_upstream_proxy_timeout = 5s
postscreen_cache_map = btree:$data_directory/postscreen_cache
postscreen_greet_action = enforce
postscreen_dnsbl_action = enforce
postscreen_dnsbl_sites = zen.spamhaus.org*3

virtual_transport = lmtp:unix:private/dovecot-lmtp
virtual_mailbox_domains = example.org
"""

SMALL_MASTER_SERVICES = """\
10025     inet  n       -       y       -       1       postscreen
smtpd     pass  -       -       y       -       -       smtpd
dnsblog   unix  -       -       y       -       0       dnsblog
tlsproxy  unix  -       -       y       -       0       tlsproxy
10587     inet  n       -       y       -       -       smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_upstream_proxy_protocol=haproxy
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
10465     inet  n       -       y       -       -       smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_upstream_proxy_protocol=haproxy
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
"""

# The internal services every master.cf has (Postfix's stock list, in its usual layout).
STOCK_MASTER_SERVICES = """\
pickup    unix  n       -       y       60      1       pickup
cleanup   unix  n       -       y       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       y       1000?   1       tlsmgr
rewrite   unix  -       -       y       -       -       trivial-rewrite
bounce    unix  -       -       y       -       0       bounce
defer     unix  -       -       y       -       0       bounce
trace     unix  -       -       y       -       0       bounce
verify    unix  -       -       y       -       1       verify
flush     unix  n       -       y       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       y       -       -       smtp
relay     unix  -       -       y       -       -       smtp
        -o syslog_name=postfix/$service_name
showq     unix  n       -       y       -       -       showq
error     unix  -       -       y       -       -       error
retry     unix  -       -       y       -       -       error
discard   unix  -       -       y       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       y       -       -       lmtp
anvil     unix  -       -       y       -       1       anvil
scache    unix  -       -       y       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MASTER_HEADER = """\
# ==========================================================================
# service type  private unpriv  chroot  wakeup  maxproc command + args
#               (yes)   (yes)   (no)    (never) (100)
# ==========================================================================
"""

SMALL_DOVECOT = """\
# Dovecot behind HAProxy: every listener HAProxy reaches expects PROXY v2.
protocols = imap lmtp sieve
listen = *
haproxy_trusted_networks = 10.0.0.0/24
haproxy_timeout = 3 secs

mail_location = maildir:~/Maildir
mail_privileged_group = mail
first_valid_uid = 1000

ssl = required
ssl_cert = </etc/ssl/certs/ssl-cert-snakeoil.pem
ssl_key = </etc/ssl/private/ssl-cert-snakeoil.key
ssl_min_protocol = TLSv1.2

auth_mechanisms = plain login
passdb {
  driver = pam
}
userdb {
  driver = passwd
}

namespace inbox {
  inbox = yes
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
}

service imap-login {
  inet_listener imap {
    port = 10143
    haproxy = yes
  }
  inet_listener imaps {
    port = 10993
    ssl = yes
    haproxy = yes
  }
}

service managesieve-login {
  inet_listener sieve {
    port = 14190
    haproxy = yes
  }
}

service lmtp {
  unix_listener /var/spool/postfix/private/dovecot-lmtp {
    mode = 0600
    user = postfix
    group = postfix
  }
}

service auth {
  unix_listener /var/spool/postfix/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}

protocol imap {
  imap_idle_notify_interval = 2 mins
  mail_max_userip_connections = 20
}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def small_deployment(root: Path) -> Path:
    """haproxy.cfg + dovecot.conf + main.cf/master.cf: the deployment the 1.0x target is about."""
    write(root / "haproxy" / "haproxy.cfg", SMALL_HAPROXY)
    write(root / "postfix" / "main.cf", SMALL_MAIN_CF)
    write(root / "postfix" / "master.cf", MASTER_HEADER + "smtp      inet  n       -       y       -       -       smtpd\n"
          + SMALL_MASTER_SERVICES + STOCK_MASTER_SERVICES)
    write(root / "dovecot" / "dovecot.conf", SMALL_DOVECOT)
    return root


def one_small_file(root: Path) -> Path:
    """A directory holding one small haproxy.cfg: what a pre-commit hook sees on a tiny repo."""
    write(root / "haproxy.cfg", SMALL_HAPROXY)
    return root


# --- growing inputs ---------------------------------------------------------------------------

HAPROXY_HEADER = """\
global
    log stdout format raw local0
    maxconn 100000

defaults
    mode tcp
    timeout connect 5s
    timeout client 31m
    timeout server 31m

"""


def _haproxy_block(i: int) -> str:
    a, b = divmod(i, 250)
    return (
        f"frontend fe_{i}\n"
        f"    bind :{10000 + i}\n"
        f"    mode tcp\n"
        f"    timeout client 31m\n"
        f"    default_backend be_{i}\n"
        f"\n"
        f"backend be_{i}\n"
        f"    mode tcp\n"
        f"    server s{i}a 10.{a % 250}.{b}.1:143 send-proxy-v2 check\n"
        f"    server s{i}b 10.{a % 250}.{b}.2:143 send-proxy-v2 check\n"
        f"\n"
    )


def haproxy_cfg(path: Path, lines: int) -> int:
    """A haproxy.cfg of about `lines` lines (one frontend + backend pair per 11 lines)."""
    parts = [HAPROXY_HEADER]
    count = HAPROXY_HEADER.count("\n")
    i = 0
    while count < lines:
        block = _haproxy_block(i)
        parts.append(block)
        count += block.count("\n")
        i += 1
    write(path, "".join(parts))
    return count


# Real main.cf parameters, cycled; repeating a parameter is legal (the last one wins).
_MAIN_CF_CYCLE = [
    "smtpd_tls_security_level = may",
    "smtpd_banner = $myhostname ESMTP",
    "mynetworks = 127.0.0.0/8 10.0.0.0/8",
    "message_size_limit = 52428800",
    "smtpd_recipient_restrictions =\n    permit_mynetworks,\n    permit_sasl_authenticated,\n    reject_unauth_destination",
    "postscreen_upstream_proxy_protocol = haproxy",
    "postscreen_cache_map = proxy:btree:$data_directory/postscreen_cache",
    "# a comment a user left here",
    "smtpd_tls_protocols = >=TLSv1.2",
    "virtual_mailbox_domains = example.org, example.net",
    "",
]


def postfix_tree(root: Path, lines: int) -> int:
    """main.cf and master.cf of about `lines` lines together (half each)."""
    main = ["compatibility_level = 3.6"]
    count = 1
    i = 0
    while count < lines // 2:
        entry = _MAIN_CF_CYCLE[i % len(_MAIN_CF_CYCLE)]
        main.append(entry)
        count += entry.count("\n") + 1
        i += 1
    write(root / "main.cf", "\n".join(main) + "\n")
    master = [MASTER_HEADER, STOCK_MASTER_SERVICES]
    count += (MASTER_HEADER + STOCK_MASTER_SERVICES).count("\n")
    port = 20000
    while count < lines:
        master.append(
            f"{port}     inet  n       -       y       -       -       smtpd\n"
            f"  -o syslog_name=postfix/p{port}\n"
            f"  -o smtpd_tls_security_level=encrypt\n"
            f"  -o smtpd_sasl_auth_enable=yes\n"
            f"  -o smtpd_upstream_proxy_protocol=haproxy\n"
        )
        count += 5
        port += 1
    write(root / "master.cf", "".join(master))
    return count


DOVECOT_ROOT = """\
protocols = imap pop3 lmtp
haproxy_trusted_networks = 10.0.0.0/8
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
}
!include conf.d/*.conf
"""


def _dovecot_part(i: int) -> str:
    return (
        f"# part {i}: one more proxied listener and mailbox\n"
        f"service imap-login {{\n"
        f"  inet_listener imap_{i} {{\n"
        f"    port = {20000 + i}\n"
        f"    haproxy = yes\n"
        f"  }}\n"
        f"}}\n"
        f"namespace inbox {{\n"
        f"  mailbox \"Archive {i}\" {{\n"
        f"    auto = subscribe\n"
        f"  }}\n"
        f"}}\n"
        f"protocol imap {{\n"
        f"  mail_max_userip_connections = 20\n"
        f"  imap_idle_notify_interval = 2 mins\n"
        f"}}\n"
    )


def dovecot_tree(root: Path, files: int) -> int:
    """dovecot/dovecot.conf including `files` conf.d files; returns the number of lines."""
    count = write(root / "dovecot.conf", DOVECOT_ROOT).read_text().count("\n")
    for i in range(files):
        part = _dovecot_part(i)
        write(root / "conf.d" / f"{10 + i % 90:02d}-part{i}.conf", part)
        count += part.count("\n")
    return count


def _compose(i: int) -> str:
    return f"""\
services:
  traefik:
    image: traefik:v3.1
    command:
      - --providers.docker=true
      - --entrypoints.smtp.address=:25
      - --entrypoints.submissions.address=:465
      - --entrypoints.imaps.address=:993
    ports:
      - "25:25"
      - "465:465"
      - "993:993"
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock:ro
  mailserver{i}:
    image: ghcr.io/docker-mailserver/docker-mailserver:14.0
    hostname: mail{i}.example.org
    environment:
      - ENABLE_RSPAMD=1
      - PERMIT_DOCKER=none
    labels:
      - traefik.enable=true
      - traefik.tcp.routers.smtp{i}.rule=HostSNI(`*`)
      - traefik.tcp.routers.smtp{i}.entrypoints=smtp
      - traefik.tcp.routers.smtp{i}.service=smtp{i}
      - traefik.tcp.services.smtp{i}.loadbalancer.server.port=25
      - traefik.tcp.services.smtp{i}.loadbalancer.proxyProtocol.version=2
      - traefik.tcp.routers.imaps{i}.rule=HostSNI(`*`)
      - traefik.tcp.routers.imaps{i}.entrypoints=imaps
      - traefik.tcp.routers.imaps{i}.service=imaps{i}
      - traefik.tcp.services.imaps{i}.loadbalancer.server.port=993
    volumes:
      - ./docker-data/dms/mail-data/:/var/mail/
      - ./docker-data/dms/config/:/tmp/docker-mailserver/
"""


def _kubernetes(i: int) -> str:
    return f"""\
apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata:
  name: imaps-{i}
  namespace: mail
spec:
  entryPoints:
    - imaps
  routes:
    - match: HostSNI(`*`)
      services:
        - name: mailserver-{i}
          port: 10993
          proxyProtocol:
            version: 2
---
apiVersion: v1
kind: Service
metadata:
  name: mailserver-{i}
  namespace: mail
spec:
  selector:
    app: mailserver-{i}
  ports:
    - name: imaps-proxy
      port: 10993
      targetPort: 10993
"""


def yaml_tree(root: Path, files: int) -> int:
    """`files` YAML files: compose stacks and Kubernetes manifests, half each."""
    lines = 0
    for i in range(files):
        if i % 2 == 0:
            text = write(root / "stacks" / f"stack{i}" / "compose.yaml", _compose(i)).read_text()
        else:
            text = write(root / "k8s" / f"ingress-{i}.yaml", _kubernetes(i)).read_text()
        lines += text.count("\n")
    return lines

"""HAProxy keyword tables used by the parser's argument checks and by the builder.

Only what the linter needs: section headers, the `timeout` kinds, the words `tcp-check expect`
accepts, the bind/server options that decide TLS and the PROXY protocol, and the sample fetches
that read a TLS ClientHello. The parser stays tolerant of every other keyword (new HAProxy
versions add keywords often); it only rejects what HAProxy itself refuses in every version.
Sources: src/cfgparse*.c, src/proxy.c, src/tcpcheck.c, src/server.c of HAProxy 2.0 to 3.5-dev.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SectionKind:
    """How a section header is written: whether it takes a name, and which name characters."""

    name: str
    needs_name: bool  # `peers` alone is refused ("missing name for peers section")
    takes_name: bool = True  # `global x` is refused ("cannot handle unexpected argument")
    proxy: bool = False  # frontend/backend/listen/defaults: names limited to [A-Za-z0-9._:-]
    message: str = ""  # HAProxy's own words when the name is missing


SECTIONS: dict[str, SectionKind] = {
    s.name: s
    for s in (
        SectionKind("global", needs_name=False, takes_name=False),
        SectionKind("defaults", needs_name=False, proxy=True),
        SectionKind("frontend", needs_name=True, proxy=True, message="'frontend' expects an <id> argument"),
        SectionKind("backend", needs_name=True, proxy=True, message="'backend' expects an <id> argument"),
        SectionKind("listen", needs_name=True, proxy=True, message="'listen' expects an <id> argument"),
        SectionKind("resolvers", needs_name=True, message="missing name for resolvers section"),
        SectionKind("peers", needs_name=True, message="missing name for peers section"),
        SectionKind("userlist", needs_name=True, message="'userlist' expects <name> as arguments"),
        SectionKind("mailers", needs_name=True, message="missing name for mailers section"),
        SectionKind("cache", needs_name=True, message="'cache' expects a <name> argument"),
        SectionKind("http-errors", needs_name=True, message="missing name for http-errors section"),
        SectionKind("ring", needs_name=True, message="missing ring name"),
        SectionKind("log-forward", needs_name=True, message="missing name for ip-forward section"),
        SectionKind("fcgi-app", needs_name=True, message="'fcgi-app' expects <name> as argument"),
        SectionKind("program", needs_name=True, message="'program' expects an <id> argument"),
        SectionKind("log-profile", needs_name=True, message="'log-profile' expects a name"),
        SectionKind("acme", needs_name=True, message="'acme' expects a name"),
        SectionKind("healthcheck", needs_name=True, message="'healthcheck' expects a name"),
        SectionKind("namespace_list", needs_name=False),
        SectionKind("crt-store", needs_name=False),
        SectionKind("traces", needs_name=False),
    )
}

# Proxy sections: which capabilities they have (frontend side = binds/routing, backend side =
# servers).
FRONTEND_SIDE = frozenset({"frontend", "listen"})
BACKEND_SIDE = frozenset({"backend", "listen"})
PROXY_SECTIONS = frozenset({"defaults", "frontend", "backend", "listen"})

# `timeout <kind>` kinds HAProxy accepts (proxy_parse_timeout); old aliases are refused
TIMEOUT_KINDS = frozenset({
    "client", "server", "connect", "check", "queue", "tunnel", "client-fin", "server-fin",
    "client-hs", "http-request", "http-keep-alive", "tarpit",
})

# Keywords that refuse a word they do not know after their own arguments (checked with
# haproxy 2.6 -c). A trailing lone `\` (someone expecting a line continuation) is therefore
# fatal on these lines; on free-form lines such as `acl` or `balance` it is silently accepted.
STRICT_ARGUMENT_KEYWORDS = frozenset({
    "bind", "server", "default-server", "server-template", "timeout", "mode", "maxconn",
    "default_backend", "use_backend", "use-server", "nbthread", "daemon", "tcp-check",
})

# `tcp-check expect` (parse_tcpcheck_expect): options with one argument, and match types
# followed by exactly one pattern; anything else is refused.
TCP_CHECK_EXPECT_OPTIONS = frozenset({
    "min-recv", "comment", "on-success", "on-error", "ok-status", "error-status", "tout-status",
    "status-code",
})
TCP_CHECK_EXPECT_MATCHES = frozenset({"string", "rstring", "binary", "rbinary", "string-lf", "binary-lf"})

# Sample fetches that read the SNI of a TLS ClientHello the proxy has not decrypted (the
# frontend must wait for the client to speak) or of a session it terminated.
SNI_FETCHES_PASSTHROUGH = frozenset({"req_ssl_sni", "req.ssl_sni"})
SNI_FETCHES_TERMINATED = frozenset({"ssl_fc_sni"})
CLIENT_HELLO_FETCHES = frozenset({
    "req_ssl_sni", "req.ssl_sni", "req_ssl_hello_type", "req.ssl_hello_type", "req_ssl_ver",
    "req.ssl_ver", "req.ssl_st_ext", "req.ssl_ec_ext", "req.ssl_alpn", "req.ssl_cipherlist",
    "req.ssl_sigalgs", "req.ssl_keyshare_groups", "req.ssl_supported_groups",
})

# PROXY protocol server options (srv_parse_send_proxy*, proxy-v2-options) as flag changes.
# A server sends v1 when the V1 flag is set, else v2 when V2 is set (make_proxy_line).
SEND_PROXY_FLAGS: dict[str, frozenset[str]] = {
    "send-proxy": frozenset({"v1"}),
    "send-proxy-v2": frozenset({"v2"}),
    "send-proxy-v2-ssl": frozenset({"v2", "ssl"}),
    "send-proxy-v2-ssl-cn": frozenset({"v2", "ssl", "cn"}),
}
NO_SEND_PROXY_FLAGS: dict[str, frozenset[str]] = {
    "no-send-proxy": frozenset({"v1"}),
    "no-send-proxy-v2": frozenset({"v2"}),
    "no-send-proxy-v2-ssl": frozenset({"ssl"}),
    "no-send-proxy-v2-ssl-cn": frozenset({"cn"}),
}

# Server options that take one argument (so that argument is not read as an option itself).
# Not exhaustive: enough to step over the values of the options mail setups use.
SERVER_OPTIONS_WITH_VALUE = frozenset({
    "addr", "agent-addr", "agent-inter", "agent-port", "agent-send", "alpn", "ca-file",
    "check-alpn", "check-proto", "check-sni", "ciphers", "ciphersuites", "cookie", "crl-file",
    "crt", "downinter", "error-limit", "fall", "fastinter", "hash-key", "id", "init-addr",
    "inter", "log-proto", "max-reuse", "maxconn", "maxqueue", "minconn", "namespace",
    "npn", "observe", "on-error", "on-marked-down", "on-marked-up", "pool-low-conn",
    "pool-max-conn", "pool-purge-delay", "port", "proto", "proxy-v2-options", "redir",
    "resolve-net", "resolve-opts", "resolve-prefer", "resolvers", "rise", "shard", "sigalgs",
    "slowstart", "sni", "source", "ssl-max-ver", "ssl-min-ver", "tcp-ut", "track", "usesrc",
    "verify", "verifyhost", "weight", "ws", "curves", "client-sigalgs", "set-proxy-v2-tlv-fmt",
    "log-bufsize", "guid", "hash-balance-factor", "check-pool-conn-name", "pool-conn-name",
    "strict-maxconn",
})
BIND_OPTIONS_WITH_VALUE = frozenset({
    "accept-netscaler-cip", "alpn", "backlog", "ca-file", "ca-ignore-err", "ca-sign-file",
    "ca-sign-pass", "ciphers", "ciphersuites", "crl-file", "crt", "crt-ignore-err", "crt-list",
    "curves", "ecdhe", "gid", "group", "id", "interface", "label", "level", "maxconn", "mode",
    "mss", "name", "namespace", "nice", "npn", "process", "proto", "severity-output",
    "sigalgs", "client-sigalgs", "ssl-max-ver", "ssl-min-ver", "tcp-ut", "thread", "uid",
    "user", "verify", "quic-cc-algo", "quic-socket", "shards", "idle-ping", "guid-prefix",
    "default-crt", "ktls",
})

# `.if`/`.elif` predicates (cond_predicates in src/cfgcond.c, 2.4 to 3.5-dev) with their
# (minimum, maximum) argument counts. A name missing in an older HAProxy is still accepted: the
# linter does not know which version reads the file.
CONDITION_PREDICATES: dict[str, tuple[int, int]] = {
    "defined": (1, 1), "feature": (1, 1), "streq": (2, 2), "strneq": (2, 2), "strstr": (2, 2),
    "version_atleast": (1, 1), "version_before": (1, 1), "openssl_version_atleast": (1, 1),
    "openssl_version_before": (1, 1), "ssllib_name_startswith": (1, 1), "enabled": (1, 1),
    "awslc_api_atleast": (1, 1), "awslc_api_before": (1, 1), "fips_mode": (0, 0),
}

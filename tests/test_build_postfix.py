"""Postfix builder: instances, docker-mailserver overlays, listeners and `$name` expansion."""
from __future__ import annotations

from mailproxy_lint.build import Model, Platform
from mailproxy_lint.build import postfix as builder
from mailproxy_lint.model import (
    FileKind,
    MailProtocol,
    Product,
    ProxyHeader,
    Setting,
    SourceFile,
    Span,
    TlsMode,
    Version,
)
from mailproxy_lint.parse import parse_file

DMS_DIR = "docker-data/dms/config"


def parsed(files: dict[str, tuple[FileKind, str]]):
    out = []
    for path, (kind, text) in files.items():
        dms = path.rsplit("/", 1)[-1] in ("postfix-main.cf", "postfix-master.cf", "user-patches.sh")
        item = parse_file(SourceFile(path, kind, text, dms_override=dms))
        assert item.ok, item.problems
        out.append(item)
    return out


def build(files, platforms=(), versions=None) -> Model:
    model = Model(root=".")
    model.platforms.extend(platforms)
    model.versions.update(versions or {})
    builder.build(parsed(files), model)
    return model


def dms_platform(version: str | None, env: dict[str, str] | None = None) -> Platform:
    return Platform(
        name="docker-mailserver", host="mailserver",
        version=Setting(Version.parse(version), Span("compose.yaml", 4, 12), "image tag") if version else None,
        config_dir=DMS_DIR,
        env={k: Setting(v, Span("compose.yaml", 9, 9), "environment") for k, v in (env or {}).items()},
        span=Span("compose.yaml", 4, 5),
    )


def by_name(model: Model):
    return {listener.name: listener for listener in model.listeners}


# --------------------------------------------------------------------------------------------
# Plain Postfix
# --------------------------------------------------------------------------------------------

PLAIN_MAIN = """\
myhostname = mail.example.com
smtpd_upstream_proxy_protocol = haproxy
"""
PLAIN_MASTER = """\
smtp      inet  n       -       y       -       1       postscreen
  -o postscreen_upstream_proxy_protocol=haproxy
smtpd     pass  -       -       y       -       -       smtpd
submissions inet n      -       y       -       -       smtpd
  -o smtpd_tls_wrappermode=yes
127.0.0.1:10025 inet n  -       n       -       -       smtpd
  -o smtpd_upstream_proxy_protocol=
[::1]:2525 inet n       -       n       -       -       smtpd
pickup    unix  n       -       y       60      1       pickup
"""


def test_plain_main_and_master_in_one_directory_make_one_instance():
    model = build(
        {"postfix/main.cf": (FileKind.POSTFIX_MAIN, PLAIN_MAIN), "postfix/master.cf": (FileKind.POSTFIX_MASTER, PLAIN_MASTER)},
        versions={(None, Product.POSTFIX): Setting(Version((3, 7)), Span("compose.yaml", 3, 12), "image tag")},
    )
    (config,) = model.postfix
    assert config.id == "postfix"
    assert config.main_span == Span("postfix/main.cf", 1, 1)
    assert [s.name for s in config.services] == ["smtp", "smtpd", "submissions", "127.0.0.1:10025", "[::1]:2525", "pickup"]
    listeners = by_name(model)
    assert set(listeners) == {"smtp", "submissions", "127.0.0.1:10025", "[::1]:2525"}

    smtp = listeners["smtp"]
    assert (smtp.port, smtp.address, smtp.protocol, smtp.daemon) == (25, None, MailProtocol.SMTP, "postscreen")
    assert smtp.span == Span("postfix/master.cf", 1, 1, 1, 5)
    assert smtp.accepts_proxy.value is ProxyHeader.ANY
    assert smtp.accepts_proxy.span == Span("postfix/master.cf", 2, 3, 2, 48)
    assert smtp.version.value == Version((3, 7)) and smtp.instance == "postfix"

    submissions = listeners["submissions"]
    assert (submissions.port, submissions.protocol) == (465, MailProtocol.SUBMISSIONS)
    assert submissions.tls.value is TlsMode.IMPLICIT and submissions.tls.span.line == 5
    # the global smtpd setting reaches every smtpd that does not override it
    assert submissions.accepts_proxy.value is ProxyHeader.ANY
    assert submissions.accepts_proxy.span == Span("postfix/main.cf", 2, 1, 2, 30)

    reinjection = listeners["127.0.0.1:10025"]
    assert (reinjection.address, reinjection.port) == ("127.0.0.1", 10025)
    assert reinjection.accepts_proxy.value is ProxyHeader.NONE and reinjection.accepts_proxy.span.line == 7
    assert (listeners["[::1]:2525"].address, listeners["[::1]:2525"].port) == ("::1", 2525)
    assert listeners["[::1]:2525"].tls.value is TlsMode.STARTTLS and listeners["[::1]:2525"].tls.is_default


def test_main_cf_alone_has_no_master_and_no_listeners():
    model = build({"etc/main.cf": (FileKind.POSTFIX_MAIN, PLAIN_MAIN)})
    (config,) = model.postfix
    assert config.master_known is False and config.services == ()
    assert model.listeners == []


def test_each_directory_is_its_own_instance():
    model = build({
        "a/main.cf": (FileKind.POSTFIX_MAIN, "x = 1\n"),
        "a/master.cf": (FileKind.POSTFIX_MASTER, "smtp inet n - n - - smtpd\n"),
        "b/master.cf": (FileKind.POSTFIX_MASTER, "2525 inet n - n - - smtpd\n"),
    })
    assert [c.id for c in model.postfix] == ["a", "b"]
    assert {(lst.instance, lst.port) for lst in model.listeners} == {("a", 25), ("b", 2525)}


# --------------------------------------------------------------------------------------------
# docker-mailserver
# --------------------------------------------------------------------------------------------


def dms_files(master: str | None = None, main: str | None = None, patches: str | None = None):
    files = {}
    if master is not None:
        files[f"{DMS_DIR}/postfix-master.cf"] = (FileKind.DMS_POSTFIX_MASTER, master)
    if main is not None:
        files[f"{DMS_DIR}/postfix-main.cf"] = (FileKind.POSTFIX_MAIN, main)
    if patches is not None:
        files[f"{DMS_DIR}/user-patches.sh"] = (FileKind.DMS_USER_PATCHES, patches)
    return files


def test_stock_dms_without_override_files():
    model = build({}, platforms=[dms_platform("15.1.0")])
    (config,) = model.postfix
    assert config.id == "docker-mailserver:mailserver" and config.host == "mailserver"
    assert config.version.value == Version((3, 7))
    assert config.version.origin == "docker-mailserver 15.1.0 image (Debian 12: Postfix 3.7)"
    assert config.main["postscreen_greet_action"].value == "enforce"
    assert config.main["mynetworks"].value == "127.0.0.0/8 [::1]/128 [fe80::]/64"
    listeners = by_name(model)
    assert set(listeners) == {"smtp", "submission", "submissions", "127.0.0.1:10025"}
    assert listeners["smtp"].span == Span("compose.yaml", 4, 5)  # untouched stock: the container
    assert listeners["submission"].protocol is MailProtocol.SUBMISSION
    assert listeners["submissions"].tls.value is TlsMode.IMPLICIT
    assert listeners["submissions"].tls.origin == "docker-mailserver 15 stock master.cf"
    assert all(lst.host == "mailserver" and lst.platform == "docker-mailserver" for lst in listeners.values())
    assert all(lst.accepts_proxy.value is ProxyHeader.NONE for lst in listeners.values())


def test_seed_2021_global_postscreen_and_smtps_on_dms_10():
    """Seed 000: postscreen PROXY in postfix-main.cf, smtps in postfix-master.cf (DMS < 13)."""
    model = build(
        dms_files(master="submission/inet/smtpd_upstream_proxy_protocol=haproxy\nsmtps/inet/smtpd_upstream_proxy_protocol=haproxy\n",
                  main="postscreen_upstream_proxy_protocol = haproxy\n"),
        platforms=[dms_platform("10.3.0")],
    )
    (config,) = model.postfix
    assert config.version.value == Version((3, 4))
    assert config.version.origin == "docker-mailserver 10.3.0 image (Debian 10: Postfix 3.4)"
    assert config.main_span == Span(f"{DMS_DIR}/postfix-main.cf", 1, 1)
    listeners = by_name(model)
    assert "smtps" in listeners and "submissions" not in listeners
    assert listeners["smtp"].accepts_proxy.value is ProxyHeader.ANY
    assert listeners["smtp"].accepts_proxy.span == Span(f"{DMS_DIR}/postfix-main.cf", 1, 1, 1, 35)
    assert listeners["smtps"].accepts_proxy.span == Span(f"{DMS_DIR}/postfix-master.cf", 2, 1, 2, 49)
    assert listeners["smtps"].port == 465 and listeners["smtps"].tls.value is TlsMode.IMPLICIT


def test_smtps_override_does_not_match_dms_13_and_later():
    platform = dms_platform("15.0.0")
    model = Model(root=".")
    model.platforms.append(platform)
    files = parsed(dms_files(master="smtps/inet/smtpd_upstream_proxy_protocol=haproxy\n"
                                    "Submission/inet/smtpd_upstream_proxy_protocol=haproxy\n"))
    instance = builder._dms_instance(platform, files, model)
    assert [(u.value, u.span.line) for u in instance.unapplied] == [
        ("smtps/inet/smtpd_upstream_proxy_protocol=haproxy", 1),
        ("Submission/inet/smtpd_upstream_proxy_protocol=haproxy", 2),
    ]
    assert "unmatched service_name/type" in instance.unapplied[0].origin
    assert "uppercase" in instance.unapplied[1].origin
    assert all("smtpd_upstream_proxy_protocol" not in s.options for s in instance.services)


def test_seed_existing_ports_override():
    """Seed 001, first variant: PROXY on the stock ports through postfix-master.cf."""
    model = build(dms_files(master=(
        "smtp/inet/postscreen_upstream_proxy_protocol=haproxy\n"
        "submission/inet/smtpd_upstream_proxy_protocol=haproxy\n"
        "submissions/inet/smtpd_upstream_proxy_protocol=haproxy\n")), platforms=[dms_platform(None)])
    listeners = by_name(model)
    assert model.postfix[0].version.value == Version((3, 7))  # unknown tag: the newest release
    for name, line in (("smtp", 1), ("submission", 2), ("submissions", 3)):
        assert listeners[name].accepts_proxy.value is ProxyHeader.ANY
        assert listeners[name].accepts_proxy.span.line == line
        assert listeners[name].accepts_proxy.origin == "docker-mailserver postfix-master.cf"
    # the Amavis re-injection listener stays plain
    assert listeners["127.0.0.1:10025"].accepts_proxy.value is ProxyHeader.NONE


SEPARATE_PORTS = """\
#!/bin/bash

postconf -Mf submission/inet | sed -e s/^submission/10587/ -e 's/submission/submission-proxyprotocol/' >> /etc/postfix/master.cf
postconf -Mf submissions/inet | sed -e s/^submissions/10465/ -e 's/submissions/submissions-proxyprotocol/' >> /etc/postfix/master.cf
postconf -P 10587/inet/smtpd_upstream_proxy_protocol=haproxy
postconf -P 10465/inet/smtpd_upstream_proxy_protocol=haproxy

postconf -Mf smtp/inet | sed -e s/^smtp/12525/ >> /etc/postfix/master.cf
postconf -P 12525/inet/postscreen_upstream_proxy_protocol=haproxy 12525/inet/syslog_name=smtp-proxyprotocol
"""


def test_seed_separate_proxy_ports_from_user_patches():
    """Seed 001, second variant: clones on 10587 / 10465 / 12525 via user-patches.sh."""
    model = build(
        dms_files(patches=SEPARATE_PORTS, main="postscreen_cache_map = proxy:btree:$data_directory/postscreen_cache\n"),
        platforms=[dms_platform("15.1.0")],
    )
    listeners = by_name(model)
    path = f"{DMS_DIR}/user-patches.sh"

    submission = listeners["10587"]
    assert (submission.port, submission.protocol, submission.daemon) == (10587, MailProtocol.SUBMISSION, "smtpd")
    assert submission.span == Span(path, 3, 1, 3, 129)
    assert submission.tls.value is TlsMode.STARTTLS
    assert submission.accepts_proxy.value is ProxyHeader.ANY and submission.accepts_proxy.span.line == 5

    implicit = listeners["10465"]
    assert (implicit.protocol, implicit.tls.value) == (MailProtocol.SUBMISSIONS, TlsMode.IMPLICIT)
    assert implicit.tls.origin == "docker-mailserver 15 stock master.cf"  # inherited from the copy
    assert implicit.accepts_proxy.span.line == 6

    postscreen = listeners["12525"]
    assert (postscreen.protocol, postscreen.daemon) == (MailProtocol.SMTP, "postscreen")
    assert postscreen.accepts_proxy.value is ProxyHeader.ANY and postscreen.accepts_proxy.span.line == 9

    # the stock ports are untouched
    assert listeners["smtp"].accepts_proxy.value is ProxyHeader.NONE
    config = model.postfix[0]
    service = next(s for s in config.services if s.name == "10587")
    assert service.options["syslog_name"].value == "postfix/submission-proxyprotocol"
    assert service.options["syslog_name"].span.line == 3  # changed by sed: the clone line
    assert service.options["smtpd_tls_security_level"].origin == "docker-mailserver 15 stock master.cf"
    assert service.origin == "user-patches.sh copy of submission/inet"
    clone = next(s for s in config.services if s.name == "12525")
    assert builder.expand(config, builder.effective_setting(config, clone, "postscreen_cache_map").value, clone) == (
        "proxy:btree:/var/lib/postfix/postscreen_cache")
    assert builder.expand(config, "$syslog_name", clone) == "smtp-proxyprotocol"


def test_override_for_a_service_that_user_patches_creates_later_does_not_apply():
    platform = dms_platform("15.1.0")
    model = Model(root=".")
    files = parsed(dms_files(master="12525/inet/postscreen_upstream_proxy_protocol=haproxy\n",
                             patches="postconf -Mf smtp/inet | sed -e s/^smtp/12525/ >> /etc/postfix/master.cf\n"))
    instance = builder._dms_instance(platform, files, model)
    assert [u.span.line for u in instance.unapplied] == [1]
    clone = instance.service("12525", "inet")
    assert clone is not None and "postscreen_upstream_proxy_protocol" not in clone.options


def test_postfix_main_cf_last_definition_wins_and_user_patches_come_last():
    model = build(
        dms_files(main="inet_protocols = ipv4\ninet_protocols = all\npostscreen_greet_action = ignore\n",
                  patches="postconf -e 'postscreen_greet_action=drop' inet_protocols=ipv6\n"),
        platforms=[dms_platform("15.1.0")],
    )
    main = model.postfix[0].main
    assert main["postscreen_greet_action"].value == "drop"
    assert main["postscreen_greet_action"].origin == "user-patches.sh postconf -e"
    assert main["inet_protocols"].value == "ipv6" and main["inet_protocols"].span.line == 1


def test_environment_variables_shape_the_stock_config():
    model = build({}, platforms=[dms_platform("14.0.0", {"ENABLE_AMAVIS": "0", "POSTFIX_INET_PROTOCOLS": "ipv4"})])
    config = model.postfix[0]
    assert "127.0.0.1:10025" not in by_name(model)
    assert config.main["inet_protocols"].value == "ipv4"
    assert config.main["inet_protocols"].span == Span("compose.yaml", 9, 9)
    assert config.version.value == Version((3, 5))


def test_dms_config_dir_without_compose_is_still_docker_mailserver():
    model = build(dms_files(master="smtp/inet/postscreen_upstream_proxy_protocol=haproxy\n"))
    (config,) = model.postfix
    assert config.id == DMS_DIR and config.host is None
    listeners = by_name(model)
    # no container known: untouched stock services point at the override file
    assert listeners["submission"].span == Span(f"{DMS_DIR}/postfix-master.cf", 1, 1)
    assert listeners["smtp"].platform == "docker-mailserver"


def test_postconf_m_edit_adds_a_service():
    model = build(dms_files(patches=(
        "postconf -M '10026/inet=10026 inet n - n - - smtpd -o smtpd_upstream_proxy_protocol=haproxy'\n"
        "postconf -MX submissions/inet\n")), platforms=[dms_platform("15.1.0")])
    listeners = by_name(model)
    assert "submissions" not in listeners
    assert listeners["10026"].accepts_proxy.value is ProxyHeader.ANY
    assert listeners["10026"].span.line == 1


# --------------------------------------------------------------------------------------------
# Expansion
# --------------------------------------------------------------------------------------------


def test_expand_forms_and_defaults():
    model = build({"p/main.cf": (FileKind.POSTFIX_MAIN,
                                 "a = x\nempty =\nref = ${a?{set}:{unset}} ${empty:fallback} $$a $(a) ${a}b\n")})
    config = model.postfix[0]
    assert builder.expand(config, config.main["ref"].value) == "set fallback $a x xb"
    assert builder.expand(config, "$syslog_name") == "postfix"
    assert builder.expand(config, "${{$a} == {x}?{yes}:{no}}") == "${{$a} == {x}?{yes}:{no}}"  # left as written


def test_default_postscreen_cache_map_follows_the_version():
    old = build({"p/master.cf": (FileKind.POSTFIX_MASTER, "smtp inet n - n - 1 postscreen\n")},
                versions={(None, Product.POSTFIX): Setting(Version((3, 7)))}).postfix[0]
    new = build({"p/master.cf": (FileKind.POSTFIX_MASTER, "smtp inet n - n - 1 postscreen\n")},
                versions={(None, Product.POSTFIX): Setting(Version((3, 11)))}).postfix[0]
    assert builder.effective_setting(old, None, "postscreen_cache_map").value == "btree:$data_directory/postscreen_cache"
    assert builder.effective_setting(new, None, "postscreen_cache_map").value.startswith("$default_cache_db_type:")
    assert builder.expand(new, "$postscreen_cache_map") == "btree:/var/lib/postfix/postscreen_cache"
    assert builder.effective_setting(new, None, "postscreen_cache_map").origin == "Postfix 3.11 default"

"""Connection strings, parsed once, here: a libpq URL, an SQLAlchemy URL
(postgresql+psycopg://...) or a libpq key=value string become one postgresql:// URL that
asyncpg understands. libpq keys asyncpg does not know are handled or refused one by one,
with a clear line, instead of reaching the server as unknown settings. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from .errors import UsageError

_SQLALCHEMY_SCHEME = re.compile(r"^(postgres(?:ql)?)\+[a-z0-9_]+://", re.IGNORECASE)
_URL_SCHEME = re.compile(r"^postgres(ql)?://", re.IGNORECASE)
# key=value conninfo: a key, '=', then a bare word or a single-quoted string (\' and \\ escaped).
_CONNINFO_PAIR = re.compile(r"\s*([A-Za-z_]+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']*)")

# What asyncpg reads from a URL itself (connect_utils.py).
ASYNCPG_KEYS = {"host", "port", "dbname", "database", "user", "password", "passfile", "service", "sslmode", "sslcert",
                "sslkey", "sslrootcert", "sslcrl", "sslpassword", "ssl_min_protocol_version",
                "ssl_max_protocol_version", "sslnegotiation", "target_session_attrs", "krbsrvname", "gsslib"}
# Startup parameters the server takes as they are (asyncpg passes other query keys as such).
SERVER_KEYS = {"application_name", "options", "client_encoding"}
# libpq keys with no effect to lose here: TCP keepalives and the like are libpq socket
# tuning, sslcompression is gone from OpenSSL, sslsni is asyncpg's default, and
# fallback_application_name only names us.
IGNORED_KEYS = {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                "sslcompression", "sslsni", "fallback_application_name", "requiressl"}
# libpq keys asyncpg cannot honour at all.
REFUSED_KEYS = {"requirepeer", "replication", "hostaddr", "sslcertmode", "require_auth", "scram_client_key",
                "scram_server_key", "oauth_issuer", "oauth_client_id", "oauth_client_secret", "oauth_scope"}
# libpq keys whose weaker values can be dropped and whose strict ones asyncpg cannot honour.
_ONLY_WEAK = {"channel_binding": {"disable", "prefer"}, "gssencmode": {"disable", "prefer"},
              "load_balance_hosts": {"disable"}}


def to_url(text: str) -> str:
    """One postgresql:// URL for asyncpg, from any of the three forms. Raises UsageError
    for what cannot be honoured (naming the key)."""
    text = text.strip()
    text = _SQLALCHEMY_SCHEME.sub(lambda m: m.group(1) + "://", text)
    if _URL_SCHEME.match(text):
        parts = urlsplit(text)
        params = parse_qsl(parts.query, keep_blank_values=True)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(_checked(params), safe="/,:"), ""))
    if "=" in text:
        return _conninfo_url(text)
    raise UsageError(f"not a PostgreSQL connection string: {redact(text)}",
                     hint="expected postgresql://user:password@host:5432/dbname or host=... dbname=... user=...")


def _conninfo_url(text: str) -> str:
    pairs, position = [], 0
    while position < len(text.rstrip()):
        match = _CONNINFO_PAIR.match(text, position)
        if match is None:
            raise UsageError(f"cannot read the connection string at {text[position:position + 20]!r}",
                             hint="key=value pairs separated by spaces; quote values with spaces: key='a b'")
        key, value = match.group(1).lower(), match.group(2)
        if value.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        pairs.append((key, value))
        position = match.end()
    return _compose(dict(pairs))


def _compose(values: dict[str, str]) -> str:
    """A postgresql:// URL from libpq keywords (user, password, host, port, dbname, the rest)."""
    netloc = ""
    if "user" in values:
        netloc = quote(values.pop("user"), safe="")
        if "password" in values:
            netloc += ":" + quote(values.pop("password"), safe="")
        netloc += "@"
    host = values.pop("host", "")
    if host and not host.startswith("/") and "," not in host:
        netloc += (f"[{host}]" if ":" in host else host) + (f":{values.pop('port')}" if "port" in values else "")
    elif host:
        values["host"] = host  # a socket directory or several hosts: as a parameter
    path = "/" + quote(values.pop("dbname"), safe="") if "dbname" in values else ""
    query = urlencode(_checked(list(values.items())), safe="/,:")
    # Written out, not urlunsplit: with no host it would drop the // (postgresql:/db).
    return f"postgresql://{netloc}{path}" + (f"?{query}" if query else "")


def with_endpoint(url: str, *, host: str | None = None, port: int | None = None, user: str | None = None,
                  dbname: str | None = None) -> str:
    """The URL with psql's -h, -p, -U and -d in place of its own host, port, user and
    database, as psql lets its flags override a connection string's."""
    parts = urlsplit(url)
    values: dict[str, str] = {}
    if parts.username:
        values["user"] = unquote(parts.username)
    if parts.password is not None:
        values["password"] = unquote(parts.password)
    hosts = parts.netloc.rpartition("@")[2]
    if "," in hosts:
        values["host"] = unquote(hosts)
    elif parts.hostname:
        values["host"] = parts.hostname
        if parts.port:
            values["port"] = str(parts.port)
    if parts.path.lstrip("/"):
        values["dbname"] = unquote(parts.path.lstrip("/"))
    values.update(parse_qsl(parts.query, keep_blank_values=True))
    if "database" in values:
        values["dbname"] = values.pop("database")
    flags = {"host": host, "port": None if port is None else str(port), "user": user, "dbname": dbname}
    values.update({key: value for key, value in flags.items() if value is not None})
    return _compose(values)


def with_setting(url: str, key: str, value: str) -> str:
    """The URL with a server setting (a query key asyncpg passes on) set to `value`, in place
    of the URL's own."""
    parts = urlsplit(url)
    params = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != key] + [(key, value)]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(params, safe="/,:"), parts.fragment))


def _checked(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Keep what asyncpg or the server understands, and connect_timeout (target.py reads it);
    drop what changes nothing; refuse the rest by name."""
    kept = []
    for key, value in params:
        if key in ASYNCPG_KEYS or key in SERVER_KEYS or key == "connect_timeout":
            if key == "client_encoding" and value.upper().replace("-", "") not in ("UTF8", "UNICODE"):
                raise UsageError(f"client_encoding={value}: copier talks UTF-8 to PostgreSQL",
                                 hint="remove client_encoding from the connection string")
            kept.append((key, value))
        elif key in IGNORED_KEYS:
            continue
        elif key in _ONLY_WEAK:
            if value.lower() not in _ONLY_WEAK[key]:
                raise UsageError(f"{key}={value} is not supported by copier's PostgreSQL driver (asyncpg)",
                                 hint=f"use {key}={sorted(_ONLY_WEAK[key])[-1]}, or remove it")
        elif key in REFUSED_KEYS:
            raise UsageError(f"the connection parameter {key} is not supported by copier's PostgreSQL driver "
                             "(asyncpg)", hint=f"remove {key} from the connection string")
        else:
            kept.append((key, value))  # a server setting, e.g. statement_timeout=0 (asyncpg sends it so)
    return kept


def connect_timeout(url: str) -> tuple[str, float | None]:
    """The URL without connect_timeout (asyncpg would send it to the server), and its value."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    timeout = next((float(v) for k, v in params if k == "connect_timeout" and v), None)
    rest = urlencode([(k, v) for k, v in params if k != "connect_timeout"], safe="/,:")
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), timeout


def describe(url: str, environ: Mapping[str, str]) -> str:
    """user@host:port/dbname as a connection would use it (PG* variables and libpq's
    defaults filling the gaps), for the line copier prints before it writes anything."""
    user, host, port, database, service = endpoint(url, environ)
    where = f"{user}@{host}:{port}/{database}"
    return f"{where} (service {service})" if service else where


def endpoint(url: str, environ: Mapping[str, str]) -> tuple[str, str, str, str, str | None]:
    """(user, host, port, database, service) of a connection made from `url`."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    user = (unquote(parts.username or "") or query.get("user") or environ.get("PGUSER") or environ.get("LOGNAME")
            or environ.get("USER", ""))
    # No host: the local socket first, as psql (whose prompt says [local] for it) and asyncpg do.
    host = parts.hostname or query.get("host") or environ.get("PGHOST") or "[local]"
    port = parts.port or query.get("port") or environ.get("PGPORT") or "5432"
    database = (unquote(parts.path.lstrip("/")) or query.get("dbname") or query.get("database")
                or environ.get("PGDATABASE") or user)
    service = query.get("service") or environ.get("PGSERVICE")
    return user, host, str(port), database, service


def redact(text: str) -> str:
    """The connection string with its password replaced by ***, found by structure: the
    URL's userinfo, a password query parameter, a password=... pair."""
    text = re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", r"\1***", text, flags=re.IGNORECASE)
    return re.sub(r"(://[^:/@\s]*:)([^@\s]*)(@)", r"\1***\3", text)


def password_of(url: str) -> str | None:
    """The password in a URL (userinfo or query) or in a key=value string."""
    if not _URL_SCHEME.match(_SQLALCHEMY_SCHEME.sub(lambda m: m.group(1) + "://", url.strip())):
        match = re.search(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", url, re.IGNORECASE)
        if match is None:
            return None
        value = match.group(1)
        return re.sub(r"\\(.)", r"\1", value[1:-1]) if value.startswith("'") else value
    parts = urlsplit(url)
    if parts.password:
        return unquote(parts.password)
    return dict(parse_qsl(parts.query)).get("password")


def redact_text(text: str, url: str) -> str:
    """Remove the DSN's password from a message, by structure (the whole DSN, userinfo,
    password=... pairs), and where it stands on its own as a word: never inside another
    word or number (a password `1` must not turn 127.0.0.1 into ***27.0.0.***)."""
    text = redact(text.replace(url, redact(url)))
    password = password_of(url)
    if password:
        text = re.sub(rf"(?<![\w.\-]){re.escape(password)}(?![\w.\-])", "***", text)
    return text

"""Links through what events name -> the incident-level causes only correlation can establish.

config.port_mismatch: connections refused on host:A while the service meant to be there says
it listens on host:B. service.down: refused (or no healthy upstream) on host:A while the service
that listened there stopped and did not come back, or its log fell silent. A service with crash
or OOM evidence is left to proc.crash / proc.oom, which the class candidates already carry.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from logtriage.correlate.ranking import Candidate, entities_of, evidence_rows

_ANY_HOST = {"0.0.0.0", "::", "[::]", "*", "", "localhost", "127.0.0.1", "::1", "[::1]"}
_REFUSED = ("conn.refused", "upstream.unavailable", "timeout.connect")


def split_hostport(value: str | None) -> tuple[str, str] | None:
    if not value or ":" not in value:
        return None
    host, _, port = value.rpartition(":")
    if not port.isdigit():
        return None
    return host.strip("[]"), port


def same_host(a: str, b: str) -> bool:
    return a == b or (a in _ANY_HOST and b in _ANY_HOST)


def listen_map(signals: pl.DataFrame) -> list[dict]:
    """Every `listening` signal as {ts, component, host, port, row}, in time order.

    A listen line without a time (a plain "listening on :3000") cannot be placed before or after
    a fault, so it does not take part."""
    out = []
    for row in signals.filter((pl.col("signal") == "listening") & pl.col("ts").is_not_null()).iter_rows(named=True):
        ents = entities_of(row["entities"])
        hp = split_hostport(ents.get("listen"))
        host, port = (hp if hp else (ents.get("host", ""), ents.get("port")))
        if port:
            out.append({"ts": row["ts"], "component": row["component"], "host": host or "", "port": str(port),
                        "row": row})
    return out


def refused_targets(ev: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """host:port -> the refused / no-upstream events naming it."""
    rows = ev.filter(pl.col("class").str.split("/").list.first().is_in(list(_REFUSED)))
    if rows.height == 0:
        return {}
    # the rule's upstream capture, the parsed upstream, host + port, or the server libpq said it
    # dialled (collect.LIBPQ_REFUSED): vectorised (a storm is all rows)
    libpq = pl.col("pg_dialled") if "pg_dialled" in rows.columns else pl.lit(None, dtype=pl.String)
    target = pl.coalesce(_named_target(), libpq)
    # what kind of server the client meant: libpq dials PostgreSQL, a redis.* client rule Redis
    kind = (pl.when(libpq.is_not_null()).then(pl.lit("db"))
            .when(pl.col("rule").str.starts_with("redis.")).then(pl.lit("cache")))
    rows = (rows.with_columns(pl.when(target != "").then(target).alias("_target"), kind.alias("_kind"))
            .filter(pl.col("_target").is_not_null()))
    return {t: g for (t,), g in rows.group_by("_target")}


def _named_target() -> pl.Expr:
    """The host:port an event names: the rule's upstream capture, the parsed upstream, or host + port."""
    def entity(name: str) -> pl.Expr:
        return pl.col("entities").str.json_path_match(f"$.{name}")

    return pl.coalesce(entity("upstream"), pl.col("upstream"),
                       pl.when(entity("host").is_not_null() & entity("port").is_not_null())
                       .then(entity("host") + ":" + entity("port")))


def upstream_targets(rows: pl.DataFrame) -> pl.Series:
    """host:port each event names as its upstream (null where it names none)."""
    target = _named_target()
    return rows.select(pl.when(target != "").then(target).alias("_target"))["_target"]


def owner_of(target: str, listens: list[dict], end: dt.datetime) -> str | None:
    """The component that last said it listens on target (host:port) up to `end`."""
    hp = split_hostport(target)
    if not hp:
        return None
    owners = [lm for lm in listens if lm["port"] == hp[1] and same_host(lm["host"], hp[0]) and lm["ts"] <= end]
    return owners[-1]["component"] if owners else None


def _candidate_rows(ev: pl.DataFrame, c: Candidate) -> pl.DataFrame:
    """The incident's flagged events a class candidate stands for (its class, blamed on its component)."""
    return ev.filter((pl.col("class").str.split("/").list.first() == c.id) & (pl.col("blame") == c.component))


def _absorb(keep: Candidate, gone: Candidate, class_cands: list[Candidate]) -> None:
    """One candidate of two for the same class and component: `gone`'s events counted in `keep`."""
    keep.count += gone.count
    keep.onset, keep.last = min(keep.onset, gone.onset), max(keep.last, gone.last)
    keep.logged_by = sorted(set(keep.logged_by) | set(gone.logged_by))
    class_cands.remove(gone)


def _service_at_upstream(rows: pl.DataFrame, proxy: str, listens: list[dict], end: dt.datetime,
                         layers: dict[str, str]) -> tuple[str, str] | None:
    """(the upstream most of a proxy's `rows` name, the service that listens there), or None."""
    targets = upstream_targets(rows).drop_nulls()
    if targets.len() == 0:
        return None
    target = targets.mode().sort()[0]
    svc = owner_of(target, listens, end)
    if svc is None or svc == proxy or layers.get(svc) == "proxy":
        return None
    return target, svc


def blame_slow_upstream(ev: pl.DataFrame, class_cands: list[Candidate], listens: list[dict],
                        end: dt.datetime, layers: dict[str, str]) -> None:
    """Move a proxy's upstream timeouts onto the service that listens at that upstream (in place).

    nginx's `upstream timed out ... upstream: "http://127.0.0.1:28070/..."` and its 504s say the
    service at that address did not answer in time; the proxy only waited (the rules' blame is
    `{upstream}`). Naming the slow service lets it rank as the place to look, while a deeper
    cause that explains the timeouts (slow queries, a crash) still outranks it. The same holds for
    the proxy's connect timeouts to an address a service says it listens on (`connect() ... timed
    out (110) while connecting to upstream`): the service did not accept in time (a hung process
    whose listen backlog is full).
    """
    for c in [c for c in class_cands if c.id in ("timeout.upstream", "timeout.connect")
              and layers.get(c.component) == "proxy"]:
        found = _service_at_upstream(_candidate_rows(ev, c), c.component, listens, end, layers)
        if found is None:
            continue
        target, svc = found
        proxy = c.component
        same = next((o for o in class_cands if o is not c and o.id == c.id and o.component == svc), None)
        if same is not None:       # the service logged timeouts of its own: one candidate
            same.evidence = sorted(same.evidence + c.evidence, key=lambda e: e["ts"] or "")[:5]
            _absorb(same, c, class_cands)
            continue
        c.component, c.layer = svc, layers.get(svc, "app")
        c.phrase = (f"{svc} did not answer {proxy} in time (upstream {target})" if c.id == "timeout.upstream"
                    else f"{svc} did not accept {proxy}'s connections in time (upstream {target})")


def blame_upstream_answers(ev: pl.DataFrame, class_cands: list[Candidate], listens: list[dict],
                           end: dt.datetime, layers: dict[str, str]) -> None:
    """Move a proxy's 5xx onto the service at its upstream when that service answered them (in place).

    nginx's `$upstream_status` equal to the status it returned (`... 500 ... 127.0.0.1:3000 500`)
    says the upstream itself answered 500: the error is the service's, the proxy only passed it on.
    A 502/504 stays the proxy's (nginx logs the ones it makes up, a failed connect or a timeout, as
    the upstream's status too), and so does a 5xx with upstream status `-` or another code. The
    moved candidate is marked `answered_for` (the proxy): the proxy's own connection failures (refused,
    reset) do not explain it (ranking.explains).
    """
    if "upstream_status" not in ev.columns:
        return
    for c in [c for c in class_cands if c.id == "http.5xx" and layers.get(c.component) == "proxy"]:
        rows = _candidate_rows(ev, c)
        # nginx writes its own 502 (connect failed, reset, bad answer) and 504 (timed out) into
        # $upstream_status too: only the other codes say the upstream answered
        answered = rows.filter((pl.col("upstream_status") == pl.col("status")) & ~pl.col("status").is_in([502, 504]))
        if answered.height * 2 <= rows.height:
            continue
        found = _service_at_upstream(answered, c.component, listens, end, layers)
        if found is None:
            continue
        target, svc = found
        proxy = c.component
        evidence = evidence_rows(answered, 5)
        same = next((o for o in class_cands if o is not c and o.id == c.id and o.component == svc), None)
        if same is not None:       # the service logged its 5xx itself too (a request log): one candidate
            evidence = sorted(same.evidence[:2] + evidence[:3], key=lambda e: e["ts"] or "")
            _absorb(c, same, class_cands)
        c.component, c.layer, c.answered_for = svc, layers.get(svc, "app"), proxy
        c.phrase = f"{svc} answered {proxy}'s requests with server errors itself (upstream {target})"
        c.evidence = evidence
        c.check_first = (f"{svc}'s own log for the failing requests (the exception or error it logged with the "
                         f"500), and what changed in {svc} when they began (a release, a config, a migration).")
        c.remediation = [f"Roll back the change to {svc} that started the errors, then fix the failing code path.",
                         "Log the exception with the request id, so the proxy's 500 leads to the app's own line."]


# a resolver that failed or timed out, rather than a name that does not exist (NXDOMAIN)
_RESOLVER_TROUBLE = (r"(?i)EAI_AGAIN|Temporary failure in name resolution|server misbehaving|i/o timeout"
                     r"|timed out|SERVFAIL|resolver")
# the peer does not speak TLS at all (OpenSSL's reading of a plain-HTTP answer to its ClientHello), or
# declines the TLS a client requires (libpq "server does not support SSL, but SSL was required"): the
# client was configured for TLS to a plaintext endpoint, unlike a certificate the server got wrong
_PLAINTEXT_PEER = (r"(?i)wrong version number|unknown protocol|packet length too long|record layer failure"
                   r"|does not support SSL|SSL is required,? but the server does(?:n.t| not) support it")


def blame_client_config(ev: pl.DataFrame, class_cands: list[Candidate]) -> None:
    """Name the configuration of the client whose lookups or handshakes show it was set up wrong (in place).

    `could not translate host name "db-primary.shop.invalid" to address: Name or service not known`
    (NXDOMAIN) says the name a client was given is wrong; nginx's `SSL_do_handshake() failed (...
    wrong version number) while SSL handshaking to upstream` says it speaks TLS to a port that does
    not, and libpq's `server does not support SSL, but SSL was required` that it requires TLS of a
    database that does not offer it. Either way the fix is in that client's configuration, as with
    a port mismatch (`app config`, `nginx config`). A failing resolver (EAI_AGAIN, "Temporary failure in name resolution") or a
    certificate the server got wrong keeps the rule's blame.
    """
    for c in [c for c in class_cands if c.id in ("dns.failure", "tls.failure")]:
        rows = _candidate_rows(ev, c)
        if rows.height == 0:
            continue
        text = rows["raw" if "raw" in rows.columns else "text"].fill_null("")
        if c.id == "dns.failure":
            misconfigured = rows.height - text.str.contains(_RESOLVER_TROUBLE).sum()
        else:
            misconfigured = text.str.contains(_PLAINTEXT_PEER).sum()
        if misconfigured * 2 <= rows.height:
            continue
        client = rows["component"].mode().sort()[0]
        c.component = f"{client} config"
        c.phrase = (f"{client} was configured with a host name that does not resolve" if c.id == "dns.failure"
                    else f"{client} was configured to speak TLS to an upstream that does not")


def infer(ev: pl.DataFrame, signals: pl.DataFrame, activity: pl.DataFrame, start: dt.datetime,
          end: dt.datetime, class_cands: list[Candidate], layers: dict[str, str]) -> list[Candidate]:
    """Incident-level candidates (config.port_mismatch, service.down) for one incident.

    Also re-blames, in class_cands, a proxy's upstream timeouts on the service listening at that
    upstream (blame_slow_upstream).
    """
    out: list[Candidate] = []
    listens = listen_map(signals)
    blame_slow_upstream(ev, class_cands, listens, end, layers)
    blame_upstream_answers(ev, class_cands, listens, end, layers)
    blame_client_config(ev, class_cands)
    crashed = {c.component for c in class_cands if c.id in ("proc.crash", "proc.oom")}
    for target, rows in refused_targets(ev).items():
        hp = split_hostport(target)
        if not hp:
            continue
        host, port = hp
        rows = rows.sort("ts")
        onset = rows["ts"][0]
        proxy = rows["component"].mode().to_list()[0]
        # who listened on the target before, and where does anyone of that kind listen now
        owners = [lm for lm in listens if lm["port"] == port and same_host(lm["host"], host) and lm["ts"] <= end]
        owner = owners[-1]["component"] if owners else None
        # the latest listen of each app-side component up to the incident's end
        latest: dict[str, dict] = {}
        for lm in listens:
            if lm["ts"] <= end and layers.get(lm["component"], "app") not in ("db", "cache"):
                latest[lm["component"]] = lm
        elsewhere = [lm for comp, lm in latest.items()
                     if same_host(lm["host"], host) and lm["port"] != port
                     and (owner is None or comp == owner) and comp != proxy]
        dependency = False        # the refused target is a database / cache the client is configured for
        kinds = rows["_kind"].drop_nulls()
        if not elsewhere and owner is None and kinds.len():
            # a client of a database / cache dialled a port nobody listened on, while the only server of
            # that kind listens on another port: the client's configuration is wrong
            kind = kinds.mode().sort()[0]
            servers = {}
            for lm in listens:
                if lm["ts"] <= end and layers.get(lm["component"]) == kind:
                    servers[lm["component"]] = lm
            dep = [lm for lm in servers.values() if same_host(lm["host"], host) and lm["port"] != port]
            if len(servers) == 1 and dep:
                elsewhere = dep
                dependency = True
        if elsewhere:
            lm = max(elsewhere, key=lambda x: x["ts"])
            svc = lm["component"]
            ev_rows = evidence_rows(rows, 3) + evidence_rows(_signal_rows(lm["row"]), 1)
            out.append(Candidate(
                id="config.port_mismatch", component=f"{proxy} config", count=rows.height,
                # a service that moved (the proxy's case) is wrong from its new listen; a server that
                # stayed put is not evidence of when the client's configuration changed
                onset=min(onset, lm["ts"]) if lm["ts"] >= start - dt.timedelta(minutes=10) and not dependency
                else onset,
                last=rows["ts"][-1], layer="app", evidence=sorted(ev_rows, key=lambda e: e["ts"] or ""),
                rules=[], inferred=True,
                phrase=(f"{proxy} dialled {target} (connection refused) while {svc} listens on "
                        f"{lm['host']}:{lm['port']}"),
                check_first=(f"Compare {proxy}'s upstream for {target} with the address {svc} logged at start-up "
                             f"({lm['host']}:{lm['port']}): `ss -ltnp` on the host shows who listens where."),
                remediation=[(f"Point {proxy}'s upstream at {lm['host']}:{lm['port']} (or start {svc} on port {port}) "
                             "and reload the proxy."),
                             "Take the port from one source of truth (environment or service discovery) for both sides.",
                             "Add a deploy check that probes the proxy's upstream address after each release.",
                             "Alert on connection-refused errors at the proxy, not only on 5xx rates."],
                logged_by=sorted({proxy, svc}),
            ))
            continue
        svc = owner
        if svc is None:
            continue
        if svc in crashed:
            continue
        stops = signals.filter((pl.col("component") == svc)
                               & pl.col("signal").is_in(["stopping", "stopped", "exited"])
                               & (pl.col("ts") <= onset + dt.timedelta(seconds=5)))
        starts_after = signals.filter((pl.col("component") == svc)
                                      & pl.col("signal").is_in(["started", "listening", "restarted"])
                                      & (pl.col("ts") > onset))
        last_seen = activity.filter(pl.col("component") == svc)["ts"].max() if activity.height else None
        silent = last_seen is not None and last_seen <= onset + dt.timedelta(seconds=2)
        if (stops.height or silent) and starts_after.height == 0:
            stop_rows = evidence_rows(_signals_as_rows(stops), 2) if stops.height else []
            when = stops["ts"][-1] if stops.height else last_seen
            out.append(Candidate(
                id="service.down", component=svc, count=rows.height, onset=min(onset, when),
                last=rows["ts"][-1], layer=layers.get(svc, "app"),
                evidence=sorted(stop_rows + evidence_rows(rows, 3), key=lambda e: e["ts"] or ""),
                rules=[], inferred=True,
                phrase=(f"{svc} stopped at {when.strftime('%H:%M:%S')} and did not come back, so {proxy}'s "
                        f"connections to {target} were refused" if stops.height else
                        f"{svc}'s log fell silent at {when.strftime('%H:%M:%S')} and {proxy}'s connections to "
                        f"{target} were refused"),
                check_first=(f"Is {svc} running? Check its process manager (systemctl status, kubectl get pods) "
                             f"and whether anything listens on {target} (`ss -ltnp`)."),
                remediation=[f"Start {svc} again and confirm it listens on {target}.",
                             "Run it under a supervisor that restarts it (systemd Restart=on-failure, a Deployment).",
                             "Give the proxy an active health check so it stops sending traffic to a dead upstream.",
                             "Alert when the service's own log goes silent or its process count drops to zero."],
                logged_by=sorted({proxy, svc}),
            ))
    return out


def _signal_rows(row: dict) -> pl.DataFrame:
    return pl.DataFrame([{"ts": row["ts"], "source": row["source"], "line": row["line"],
                          "component": row["component"], "class": None, "rule": row["rule"],
                          "text": row["raw"]}])


def _signals_as_rows(sig: pl.DataFrame) -> pl.DataFrame:
    return sig.select("ts", "source", "line", "component", pl.lit(None, dtype=pl.String).alias("class"), "rule",
                      pl.col("raw").alias("text"))

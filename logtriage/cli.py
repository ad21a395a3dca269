"""The command line: a thin click group over the pipeline stages; no analysis logic here."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

import click
import polars as pl

from logtriage import __version__, formats, pipeline
from logtriage.errors import LogtriageError
from logtriage.model import HOT_COLUMNS
from logtriage.report import events as event_lines

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

EXIT_OK, EXIT_FOUND, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
DEBUG_ENV = "LOGTRIAGE_DEBUG"     # set: an internal error shows its Python traceback


class _Group(click.Group):
    """The command group; a bug of ours ends in one line that says what to do, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as err:   # the last resort for bugs, shown plainly
            if os.environ.get(DEBUG_ENV):
                raise
            where = err.__traceback__
            while where is not None and where.tb_next is not None:
                where = where.tb_next
            at = f" at {os.path.basename(where.tb_frame.f_code.co_filename)}:{where.tb_lineno}" if where else ""
            click.echo(f"logtriage: internal error{at}: {type(err).__name__}: {err}. This is a bug in "
                       f"logtriage, not in your logs: please report it with this line; {DEBUG_ENV}=1 "
                       "shows the traceback.", err=True)
            sys.exit(EXIT_INTERNAL)


def _paths(f: Callable) -> Callable:
    return click.argument("paths", nargs=-1, required=True, metavar="PATHS...")(f)


def _input_options(f: Callable) -> Callable:
    f = click.option("--tz", default="UTC", show_default=True, metavar="ZONE",
                     help="Zone for timestamps that carry none (e.g. Europe/Berlin); reported as assumed.")(f)
    f = click.option("--as", "force_format", type=click.Choice(formats.names()), metavar="FORMAT",
                     help="Read every input as this format instead of detecting it "
                          "(per file: PATH:FORMAT). See `logtriage formats`.")(f)
    return f


def _rules_option(f: Callable) -> Callable:
    return click.option("--rules", "rule_dirs", multiple=True, metavar="DIR",
                        type=click.Path(exists=True, file_okay=True, dir_okay=True),
                        help="Add the rule files (*.toml) in DIR; a rule with a built-in rule's id replaces it. "
                             "Repeatable.")(f)


def _load_rules(rule_dirs: tuple[str, ...]):
    """The rule pack, or exit 2 with every problem in the rule files listed."""
    from logtriage.classify.loader import load_rules
    try:
        return load_rules(list(rule_dirs))
    except LogtriageError as err:
        click.echo(f"logtriage: {err}", err=True)
        sys.exit(EXIT_USAGE)


def _classifier(rule_dirs: tuple[str, ...]):
    from logtriage.classify.engine import Classifier, classify
    clf = Classifier(_load_rules(rule_dirs), "rule")
    return lambda batch: classify(batch, clf)


def _say_problem(p) -> None:
    click.echo(f"logtriage: {p}", err=True)


@click.group(cls=_Group, context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version")
def main() -> None:
    """Read all the logs of an outage at once and tell why the site is down.

    logtriage reads nginx, Envoy/Istio, HAProxy, PostgreSQL, pgbouncer, Redis and application logs
    (plain files, directories, .gz, or stdin as "-"), detects each line's format, classifies every
    error line (classes from TAXONOMY.md) and correlates them across sources into incidents with
    ranked root causes.

    \b
    Examples:
      kubectl logs deploy/api | logtriage scan -
      logtriage analyze ./incident-logs/
      logtriage report ./incident-logs/ -o postmortem.html

    Exit codes: 0 analysed (incidents or not); 1 only with --fail-on, when a matching incident
    was found; 2 usage error, no readable input, or invalid rule files; 3 an internal error (a bug
    of logtriage's: reported in one line, LOGTRIAGE_DEBUG=1 shows the traceback).
    """


# -- scan --------------------------------------------------------------------------------------

@main.command(context_settings=CONTEXT)
@_paths
@click.option("--format", "out_format", type=click.Choice(["text", "ndjson"]), default="text", show_default=True,
              help="text: one readable line per event; ndjson: one JSON object per event.")
@click.option("--all", "emit_all", is_flag=True, help="Emit every event, not only the flagged (classified) ones.")
@click.option("--stats", "stats_only", is_flag=True,
              help="Print only the line accounting per source (no events): the benchmark mode.")
@click.option("--fields", "fields_mode", type=click.Choice(["parsed", "full"]), default="parsed", show_default=True,
              help="NDJSON `fields`: the parsed columns (status, duration, upstream, flags, pid, sqlstate), "
                   "or everything the event's format knows (slower: for people and small streams).")
@_input_options
@_rules_option
def scan(paths: tuple[str, ...], out_format: str, emit_all: bool, stats_only: bool, fields_mode: str, tz: str,
         force_format: str | None, rule_dirs: tuple[str, ...]) -> None:
    """Stream events from logs as they are read, flagged ones by default.

    Reads files, directories (recursively, rotated and .gz files included) or "-" for stdin,
    and prints each event as soon as its chunk is parsed: on a slow pipe such as `kubectl logs -f`
    an event shows well under a second after its line arrives. The line accounting per source
    (read / parsed / unparsed / skipped) goes to stderr at the end.

    \b
    Examples:
      kubectl logs deploy/api | logtriage scan -
      logtriage scan /var/log/nginx/ --format ndjson --all | jq .
      logtriage scan app.log:app_json --all
      logtriage scan big.log --stats
    """
    run = pipeline.Run()
    classify = None if stats_only and not rule_dirs else _classifier(rule_dirs)

    def shown(batch: pl.DataFrame) -> pl.Series:
        """Classify, keep what is shown and render its lines (on the reader's threads)."""
        batch = classify(batch) if classify is not None else batch
        if not emit_all and "class" in batch.columns:
            batch = batch.filter(pl.col("class").is_not_null())
        return (event_lines.ndjson(batch, full=fields_mode == "full") if out_format == "ndjson"
                else event_lines.text(batch))

    out = sys.stdout.buffer
    try:
        for lines in pipeline.read_events(list(paths), run=run, tz=tz, force_format=force_format,
                                          finish=None if stats_only else shown, on_problem=_say_problem,
                                          columns=HOT_COLUMNS if stats_only else None):
            if stats_only or not len(lines):
                continue
            event_lines.write(lines, out)
            out.flush()
    except BrokenPipeError:
        _quiet_broken_pipe()
        return
    except LogtriageError as err:
        click.echo(f"logtriage: {err}", err=True)
        sys.exit(EXIT_USAGE)
    _report_accounting(run, to_stdout=stats_only)
    if not run.stats:
        click.echo("logtriage: no readable input.", err=True)
        sys.exit(EXIT_USAGE)


def _quiet_broken_pipe() -> None:
    # `logtriage scan ... | head` : the reader left; exit quietly like other Unix tools
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def event_dicts(batch: pl.DataFrame) -> list[dict]:
    """The NDJSON shape of events: model columns, ISO time, parsed fields, class columns."""
    rows = []
    has_class = "class" in batch.columns
    for row in batch.iter_rows(named=True):
        ts = row["ts"]
        rec = {
            "ts": ts.isoformat().replace("+00:00", "Z") if ts else None,
            "source": row["source"],
            "line": row["line"],
            "format": row["format"],
            "component": row["component"],
            "level": row["level"],
            "message": row["message"],
            "raw": row["raw"],
            "fields": formats.fields_of(row["format"], row["raw"]),
            "class": row["class"] if has_class else None,
        }
        if has_class:
            rec["rule"] = row["rule"]
            rec["severity"] = row["severity"]
            ents = json.loads(row["entities"]) if row["entities"] else {}
            rec["entities"] = {k: v for k, v in ents.items() if v is not None}
        rows.append(rec)
    return rows


def _report_accounting(run: pipeline.Run, to_stdout: bool) -> None:
    echo = (lambda s: click.echo(s)) if to_stdout else (lambda s: click.echo(s, err=True))
    if not run.stats:
        return
    echo(f"{'source':<60} {'format':<14} {'read':>9} {'parsed':>9} {'unparsed':>9} {'skipped':>8}")
    for st in run.stats.values():
        echo(f"{st.path[-60:]:<60} {st.main_format or '-':<14} {st.lines_read:>9} {st.lines_parsed:>9} "
             f"{st.lines_unparsed:>9} {st.lines_skipped:>8}")
    t = run.totals()
    echo(f"{'total':<60} {'':<14} {t['lines_read']:>9} {t['lines_parsed']:>9} {t['lines_unparsed']:>9} "
         f"{t['lines_skipped']:>8}")
    if t["lines_truncated"]:
        echo(f"{t['lines_truncated']} line(s) longer than 1 MiB were cut.")


# -- formats -----------------------------------------------------------------------------------

@main.group(context_settings=CONTEXT, invoke_without_command=True)
@click.pass_context
def formats_cmd(ctx: click.Context) -> None:
    """List the log families logtriage reads, or detect the family of files.

    \b
    Examples:
      logtriage formats
      logtriage formats detect /var/log/nginx/error.log ./pg/
    """
    if ctx.invoked_subcommand is None:
        for p in formats.PARSERS:
            doc = (p.__doc__ or "").strip().split("\n", 1)[0]
            click.echo(f"{p.NAME:<16} {p.LAYER:<7} {doc}")


main.add_command(formats_cmd, name="formats")


@formats_cmd.command("detect", context_settings=CONTEXT)
@_paths
@_input_options
def formats_detect(paths: tuple[str, ...], tz: str, force_format: str | None) -> None:
    """Per file: the family detected, the share of lines parsed, and the time range.

    \b
    Example:
      logtriage formats detect ./incident-logs/
    """
    run = pipeline.Run()
    for _ in pipeline.read_events(list(paths), run=run, tz=tz, force_format=force_format, on_problem=_say_problem):
        pass
    if not run.stats:
        click.echo("logtriage: no readable input.", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"{'source':<70} {'format':<14} {'parsed':>7}  time range")
    for st in run.stats.values():
        body = st.lines_read - st.lines_skipped
        share = f"{100 * st.lines_parsed / body:.1f}%" if body else "-"
        rng = f"{st.first_ts or '?'} .. {st.last_ts or '?'}" if st.first_ts else "no timestamps"
        others = ", ".join(f"{k} {v}" for k, v in st.formats.items() if k != st.main_format)
        click.echo(f"{st.path[-70:]:<70} {st.main_format or '-':<14} {share:>7}  {rng}" + (f"  (also: {others})" if others else ""))


# -- rules -------------------------------------------------------------------------------------

@main.group(context_settings=CONTEXT)
def rules() -> None:
    """List, test and explain the classification rules (rules/*.toml plus --rules DIR).

    \b
    Examples:
      logtriage rules list
      logtriage rules test --rules ./my-rules/
      logtriage rules explain nginx.upstream_refused
    """


@rules.command("list", context_settings=CONTEXT)
@_rules_option
def rules_list(rule_dirs: tuple[str, ...]) -> None:
    """One line per rule: id, class, severity, priority, file.

    \b
    Example:
      logtriage rules list | grep postgres
    """
    for r in _load_rules(rule_dirs):
        what = r.klass if r.kind == "rule" else f"signal:{r.signal}"
        click.echo(f"{r.id:<44} {what:<28} {r.severity:<9} {r.priority:>4}  {os.path.basename(r.file)}")


@rules.command("test", context_settings=CONTEXT)
@_rules_option
@click.option("-v", "--verbose", is_flag=True, help="Show passing examples too.")
def rules_test(rule_dirs: tuple[str, ...], verbose: bool) -> None:
    """Run every rule's match / no_match examples; exit 1 when one fails.

    \b
    Example:
      logtriage rules test --rules ./my-rules/
    """
    from logtriage.classify.examples import check_all
    results = check_all(_load_rules(rule_dirs))
    failed = [r for r in results if not r.ok]
    for r in results:
        if verbose or not r.ok or r.kind == "known_miss":
            mark = "ok  " if r.ok else "FAIL"
            click.echo(f"{mark} {r.test_id}: {r.detail or 'as expected'}\n       {r.line[:200]}")
    passed = len(results) - len(failed)
    click.echo(f"{passed} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


@rules.command("explain", context_settings=CONTEXT)
@click.argument("rule_id")
@_rules_option
def rules_explain(rule_id: str, rule_dirs: tuple[str, ...]) -> None:
    """What a rule means, where to look first, and how to fix it.

    \b
    Example:
      logtriage rules explain postgres.too_many_clients
    """
    found = {r.id: r for r in _load_rules(rule_dirs)}
    r = found.get(rule_id)
    if r is None:
        near = [i for i in found if rule_id.split(".")[-1] in i][:5]
        click.echo(f"logtriage: no rule {rule_id!r}." + (f" Did you mean: {', '.join(near)}?" if near else
                                                         " See `logtriage rules list`."), err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"{r.id}  ({r.klass or 'signal:' + str(r.signal)}, {r.severity}, priority {r.priority})")
    click.echo(f"file: {r.file}")
    if r.pattern:
        click.echo(f"pattern: {r.pattern}")
    for key in ("formats", "status", "flags", "sqlstate", "level"):
        v = getattr(r, key)
        if v:
            click.echo(f"{key}: {v}")
    if r.explain:
        click.echo(f"\nWhat it means: {r.explain}")
    if r.check_first:
        click.echo(f"Check first: {r.check_first}")
    if r.remediation:
        click.echo("Remediation:")
        for step in r.remediation:
            click.echo(f"  - {step}")
    if r.match:
        click.echo(f"Example: {r.match[0]}")


# -- analyze / report --------------------------------------------------------------------------

def _when(value: str | None, tz: str):
    """--since/--until: ISO 8601 (a time without zone is read in --tz)."""
    if value is None:
        return None
    import datetime as dt
    from zoneinfo import ZoneInfo
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time, e.g. 2026-11-21T10:14:00Z") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=ZoneInfo(tz))
    return t.astimezone(dt.UTC)


def _analysis_options(f: Callable) -> Callable:
    f = click.option("--until", metavar="TIME", help="Ignore events after TIME (ISO 8601).")(f)
    f = click.option("--since", metavar="TIME", help="Ignore events before TIME (ISO 8601).")(f)
    f = click.option("--target-error-rate", type=float, default=0.001, show_default=True,
                     help="Error-rate objective the impact is compared with (0.001 = 0.1 %).")(f)
    f = click.option("--target-latency", type=float, default=2.0, show_default=True, metavar="SECONDS",
                     help="Response-time objective (p95) the impact is compared with.")(f)
    return f


def _run_analysis(paths, rule_dirs, tz, force_format, since, until, target_error_rate, target_latency) -> dict:
    from logtriage.correlate.analysis import analyze as run_analysis
    _load_rules(rule_dirs)   # exits 2 with every rule-file problem listed
    try:
        doc = run_analysis(list(paths), rule_dirs=list(rule_dirs), tz=tz, force_format=force_format,
                           since=_when(since, tz), until=_when(until, tz),
                           targets={"error_rate": target_error_rate, "latency_s": target_latency},
                           on_problem=_say_problem)
    except LogtriageError as err:
        click.echo(f"logtriage: {err}", err=True)
        sys.exit(EXIT_USAGE)
    if not doc["sources"]:
        click.echo("logtriage: no readable input: nothing was analysed.", err=True)
        sys.exit(EXIT_USAGE)
    return doc


def _use_color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


@main.command(context_settings=CONTEXT)
@_paths
@click.option("--format", "out_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: the story for a terminal; json: the analysis document (docs/json-schema.md).")
@click.option("--fail-on", metavar="CLASS|any",
              help="Exit 1 when an incident was found whose causes include CLASS (a TAXONOMY.md id), "
                   "or any incident with 'any'. For CI and alerting.")
@_analysis_options
@_input_options
@_rules_option
def analyze(paths, out_format, fail_on, since, until, target_error_rate, target_latency, tz, force_format,
            rule_dirs) -> None:
    """Find the incidents in logs and rank their likely root causes, with the evidence.

    Reads every source at once, classifies each error line, groups the errors into incidents
    across sources and time, links them through what they name (upstream host:port, database,
    listening ports, restarts) and ranks causes: deeper layers and earlier onsets first, and
    those that explain the most symptoms.

    \b
    Examples:
      logtriage analyze ./incident-logs/
      logtriage analyze nginx/ postgres/ app/ --format json > analysis.json
      logtriage analyze /var/log/ --since 2026-11-21T10:00:00Z --fail-on any
    """
    from logtriage.report import render
    doc = _run_analysis(paths, rule_dirs, tz, force_format, since, until, target_error_rate, target_latency)
    click.echo(render(doc, out_format, color=_use_color() and out_format == "text"), nl=False)
    if fail_on:
        hit = any(fail_on == "any" or any(c["id"] == fail_on for c in inc["causes"]) for inc in doc["incidents"])
        sys.exit(EXIT_FOUND if hit else EXIT_OK)


@main.command(context_settings=CONTEXT)
@_paths
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="Where to write the report (an .html file).")
@_analysis_options
@_input_options
@_rules_option
def report(paths, output, since, until, target_error_rate, target_latency, tz, force_format, rule_dirs) -> None:
    """Write a self-contained HTML postmortem report for the logs.

    One file with the verdict, the impact, a timeline chart, the ranked causes with their
    evidence and remediation, what else was seen, and every source read. It loads nothing from
    outside (it opens during a network outage) and embeds the analysis JSON.

    \b
    Example:
      logtriage report ./incident-logs/ -o postmortem.html
    """
    from logtriage.report import render
    doc = _run_analysis(paths, rule_dirs, tz, force_format, since, until, target_error_rate, target_latency)
    html = render(doc, "html")
    try:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(html)
    except OSError as err:
        click.echo(f"logtriage: {output}: cannot write the report ({err.strerror or err}).", err=True)
        sys.exit(EXIT_USAGE)
    verdict = doc["incidents"][0]["causes"][0] if doc["incidents"] and doc["incidents"][0]["causes"] else None
    if verdict:
        click.echo(f"wrote {output}: most likely {verdict['id']} in {verdict['component']} "
                   f"(confidence {verdict['confidence']:.0%})")
    else:
        click.echo(f"wrote {output}: no incident found")

"""The `todopy` command: serve, migrate, db-url."""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
from typing import Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

from todopy import __version__, logs
from todopy.errors import DatabaseUnavailable
from todopy.settings import Settings, SettingsError

log = logging.getLogger("todopy")

ENVIRONMENT_HELP = """environment:
  DATABASE_URL           PostgreSQL DSN; unset: an embedded PostgreSQL in TODOPY_DATA_DIR
  TODOPY_DATA_DIR        embedded PostgreSQL data directory (default ./var/pg)
  HOST, PORT             where to listen (default 127.0.0.1:8000)
  TODOPY_WORKERS         worker processes (default 1)
  TODOPY_POOL_SIZE       database connections per worker, plus one for LISTEN (default 8)
  TODOPY_ALLOWED_ORIGINS comma-separated extra origins allowed to write with cookies
  TODOPY_PING_INTERVAL   seconds between WebSocket pings (default 25)
  TODOPY_CHANGELOG_RETENTION  seconds of change log kept for resumes (default 604800)
  TODOPY_LOG_FORMAT      text or json (default text)
  see docs/operations.md for the rest"""


def redact(dsn: str) -> str:
    """The DSN without its password, for logs."""
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return dsn


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The DSN to use: DATABASE_URL, or an embedded PostgreSQL started (and stopped) here."""
    if settings.database_url:
        yield settings.database_url
        return
    from todopy.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(settings.data_dir)
    dsn = embedded.start()
    owner_pid = os.getpid()
    try:
        yield dsn
    finally:
        # gunicorn's forked workers unwind through here too; only the master stops the database.
        if os.getpid() == owner_pid and embedded.started_here:
            embedded.stop()


@contextlib.contextmanager
def shared_metrics(workers: int) -> Iterator[None]:
    """Several workers: a directory where they pool their metrics (before prometheus_client is imported)."""
    if workers < 2 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    directory = tempfile.mkdtemp(prefix="todopy-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    owner_pid = os.getpid()
    try:
        yield
    finally:
        if os.getpid() == owner_pid:
            shutil.rmtree(directory, ignore_errors=True)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings.replace(**{k: v for k, v in {
        "host": args.host, "port": args.port, "workers": args.workers}.items() if v is not None})
    with shared_metrics(settings.workers), database(settings) as dsn:
        from todopy.migrate import migrate
        from todopy.server import ServerApplication

        where = f"embedded PostgreSQL in {settings.data_dir}" if not settings.database_url else "DATABASE_URL"
        log.info("database: %s (%s)", redact(dsn), where)
        migrate(dsn)
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        log.info("todopy %s serving on http://%s:%s/ with %d worker(s); Ctrl-C to stop",
                 __version__, host, settings.port, settings.workers)
        try:
            ServerApplication(settings, dsn).run()
        except SystemExit as stop:
            return int(stop.code or 0)
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from todopy.migrate import migrate

    with database(settings) as dsn:
        applied = migrate(dsn)
        print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_db_url(args: argparse.Namespace, settings: Settings) -> int:
    if settings.database_url:
        print(settings.database_url)
        return 0
    from todopy.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(settings.data_dir)
    if embedded.postmaster_pid() is None or embedded._running_port() is None:
        print(f"the embedded PostgreSQL in {settings.data_dir} is not running; start it with "
              "'todopy serve' (or set DATABASE_URL)", file=sys.stderr)
        return 1
    embedded.port = embedded._running_port()
    print(embedded.dsn())
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="todopy", description="A realtime TodoMVC server: REST and "
                                  "WebSocket streams on PostgreSQL.", epilog=ENVIRONMENT_HELP,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="version", version=f"todopy {__version__}")
    top.add_argument("--log-format", choices=("text", "json"), help="log lines as text (default) or JSON")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="migrate, then serve HTTP and WebSockets",
                                description="Apply pending migrations, then serve the API, the streams and "
                                "the TodoMVC page. Without DATABASE_URL, starts an embedded PostgreSQL "
                                "and stops it on exit.", epilog=ENVIRONMENT_HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 opens to the network)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000, or PORT)")
    serve.add_argument("--workers", type=int, help="worker processes, each with its own listener (default 1)")
    serve.add_argument("--log-format", choices=("text", "json"), default=argparse.SUPPRESS,
                       help="log lines as text (default) or JSON")
    serve.set_defaults(run=cmd_serve)

    migrate = commands.add_parser("migrate", help="apply pending database migrations and exit",
                                  description="Apply the numbered migrations in sql/ that are not applied "
                                  "yet, each in its own transaction; safe to run concurrently.")
    migrate.set_defaults(run=cmd_migrate)

    db_url = commands.add_parser("db-url", help="print the PostgreSQL DSN in use",
                                 description="Print DATABASE_URL, or the DSN of the running embedded "
                                 "PostgreSQL (with its password: keep it to yourself).")
    db_url.set_defaults(run=cmd_db_url)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if getattr(args, "log_format", None):
            settings = settings.replace(log_format=args.log_format)
    except SettingsError as error:
        print(f"todopy: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    try:
        return args.run(args, settings)
    except DatabaseUnavailable as error:
        print(f"todopy: {error.message}\nIs PostgreSQL running, and is DATABASE_URL right?", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

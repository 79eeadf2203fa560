"""An embedded PostgreSQL cluster in a local data directory, for `make run` and the tests.

The binaries come from the `pgserver` wheel (PostgreSQL 16, installed by pip, so a
fresh machine needs no apt step). We drive them with pg_ctl ourselves rather than
through `pgserver.get_server()`: its lifecycle (atexit hooks, a shared pid list,
unix-socket only) cannot be stopped from a signal handler or restarted under a
running server, which `todopy serve` and the database-restart tests both need.

PostgreSQL refuses to run as root, so as root the cluster belongs to an
unprivileged system user (created on first use), as pgserver itself does.
The cluster listens on 127.0.0.1 only and requires a generated password, kept
in the data directory, so other local users cannot read the data.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger(__name__)

SYSTEM_USER = "todopy-pg"      # runs the cluster when we are root
DATABASE = "todopy"          # created on first start
SUPERUSER = "postgres"


def _bin_dir() -> Path:
    # Located, not imported: importing pgserver sets up its own server machinery.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded PostgreSQL needs the 'pgserver' package: pip install pgserver")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _let_others_traverse(path: Path, own: Path) -> None:
    """Let the cluster's user reach `path`, changing as little as possible of what is not ours.

    Directories at or below `own` (the virtualenv, or the part of the data
    directory's path this process created) get go+rx, as before. Directories
    above it belong to someone else (a checkout under /root has /root above it):
    they get only o+x (search, not listing) and only when the cluster's user
    could not pass otherwise, and each change is logged.
    """
    own = own.resolve()
    for parent in path.parents:
        mode = parent.stat().st_mode
        if parent == own or own in parent.parents:
            if mode & 0o055 != 0o055:
                parent.chmod(mode | 0o055)
        elif not mode & 0o001:
            log.warning("giving others search (x) permission on %s so that the PostgreSQL user can reach %s; "
                        "put the checkout or TODOPY_DATA_DIR elsewhere to avoid it", parent, path)
            parent.chmod(mode | 0o001)


def _first_existing(path: Path) -> Path:
    """`path`'s nearest existing ancestor (or itself): where mkdir(parents=True) starts creating."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (good enough on loopback)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`: initialised on first start, reused after."""

    def __init__(self, data_dir: Path | str, port: int | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.bin_dir = _bin_dir()
        self._run_as = self._system_user() if os.geteuid() == 0 else None
        self.started_here = False

    # -- public -------------------------------------------------------------

    @property
    def password_file(self) -> Path:
        return self.data_dir / "todopy.password"

    def dsn(self, database: str = DATABASE) -> str:
        password = quote(self.password_file.read_text().strip(), safe="")
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{database}"

    def start(self) -> str:
        """Initialise if needed, start unless already running, create the database; return the DSN."""
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        running_port = self._running_port()
        if running_port is not None:
            log.info("embedded PostgreSQL already running on port %s (data dir %s)", running_port, self.data_dir)
            self.port = running_port
        else:
            self.port = self.port or free_port()
            self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.data_dir / "server.log"),
                         "-o", f"-p {self.port}")
            self.started_here = True
            log.info("embedded PostgreSQL started on 127.0.0.1:%s (data dir %s)", self.port, self.data_dir)
        self._ensure_database()
        return self.dsn()

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster and wait until every postgres process is gone."""
        if self._running_port() is None:
            return
        self._pg_ctl("stop", "-w", "-t", "60", "-m", mode)
        self.started_here = False
        log.info("embedded PostgreSQL stopped (data dir %s)", self.data_dir)

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess:
        """One of the bundled programs (pg_basebackup, pg_ctl promote, ...), run as the cluster's user."""
        return self._run(program, *args)

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None

    # -- internals ----------------------------------------------------------

    def _system_user(self) -> pwd.struct_passwd:
        try:
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                            SYSTEM_USER], check=True, capture_output=True)
            entry = pwd.getpwnam(SYSTEM_USER)
        # The unprivileged user must be able to execute the bundled binaries (inside the virtualenv).
        _let_others_traverse(self.bin_dir, own=Path(sys.prefix))
        return entry

    def _subprocess_kwargs(self) -> dict:
        # A session of its own: Ctrl-C in the terminal reaches the server, which then stops
        # PostgreSQL itself, after the last request, instead of both dying at once.
        kwargs: dict = {"cwd": "/", "check": True, "capture_output": True, "text": True,
                        "start_new_session": True}
        if self._run_as is not None:
            kwargs.update(user=self._run_as.pw_uid, group=self._run_as.pw_gid, extra_groups=[])
        return kwargs

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / program), *args]
        try:
            return subprocess.run(command, **self._subprocess_kwargs())
        except subprocess.CalledProcessError as error:
            raise RuntimeError(
                f"{program} failed (exit {error.returncode}): {error.stderr.strip() or error.stdout.strip()}"
                f"\nsee {self.data_dir / 'server.log'}"
            ) from None

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), *args)

    def _initdb(self) -> None:
        log.info("initialising embedded PostgreSQL in %s", self.data_dir)
        existing = _first_existing(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # What mkdir created is ours; `existing` and above are not (unless it is the data dir).
        created = next((p for p in [self.data_dir, *self.data_dir.parents] if p.parent == existing), self.data_dir)
        password = secrets.token_urlsafe(24)
        if self._run_as is not None:
            _let_others_traverse(self.data_dir, own=created)
            os.chown(self.data_dir, self._run_as.pw_uid, self._run_as.pw_gid)
        with tempfile.NamedTemporaryFile("w", dir=self.data_dir.parent, delete=False) as pwfile:
            pwfile.write(password + "\n")
        try:
            if self._run_as is not None:
                os.chown(pwfile.name, self._run_as.pw_uid, self._run_as.pw_gid)
            self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, f"--pwfile={pwfile.name}",
                      "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8")
            # Stored beside the data, owned by the cluster's user, mode 0600 like the data itself.
            shutil.copyfile(pwfile.name, self.password_file)
            os.chmod(self.password_file, 0o600)
            if self._run_as is not None:
                os.chown(self.password_file, self._run_as.pw_uid, self._run_as.pw_gid)
        finally:
            os.unlink(pwfile.name)
        with open(self.data_dir / "postgresql.auto.conf", "a") as conf:
            conf.write(
                "# written by todopy: loopback TCP only, no unix socket (paths may be too long)\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "max_connections = 300\n"
            )

    def _running_port(self) -> int | None:
        """The port of a live postmaster on this data dir, or None."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().split("\n")
            pid, port = int(lines[0]), int(lines[3])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return port

    def _ensure_database(self) -> None:
        import psycopg2

        conn = psycopg2.connect(self.dsn("postgres"), connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
                if cur.fetchone() is None:
                    cur.execute("CREATE DATABASE todopy")
        finally:
            conn.close()

"""The two storage targets, each started privately on free loopback ports with an empty archive.

`OurServer`: `manage.py setuppacs` then `manage.py runpacs --only dicom` in a fresh data folder,
on SQLite or on a freshly created MariaDB or PostgreSQL database. `OrthancServer`:
/usr/sbin/Orthanc with its own JSON configuration in a fresh folder (any calling AE accepted),
its index on SQLite (no plugins) or on a freshly created MariaDB or PostgreSQL database through
Debian's orthanc-mysql or orthanc-postgresql index plugin (files still in its storage folder).
Both are context managers: entering starts the server and waits until C-ECHO succeeds,
leaving stops it with SIGTERM (and SIGKILL if it does not stop in time).
"""

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from durability import durable_environment, empty_orthanc_folders, lend_orthanc_folders, take_back_orthanc_folders
from sending import dcmtk_tool

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
ORTHANC_BINARY = "/usr/sbin/Orthanc"
ORTHANC_PLUGIN_DIR = "/usr/share/orthanc/plugins"
ORTHANC_MYSQL_PLUGIN = f"{ORTHANC_PLUGIN_DIR}/libOrthancMySQLIndex.so"  # Debian's orthanc-mysql
ORTHANC_POSTGRESQL_PLUGIN = f"{ORTHANC_PLUGIN_DIR}/libOrthancPostgreSQLIndex.so"  # orthanc-postgresql
# Our server's own databases, dropped and created per measurement (BENCH_MARIADB_DATABASE,
# BENCH_POSTGRES_DATABASE: so that two checkouts benchmarking on one database server do not
# drop each other's); Orthanc's MySQL and PostgreSQL indexes have their own beside ours.
MARIADB_DATABASE = os.environ.get("BENCH_MARIADB_DATABASE", "pacsone_bench")
POSTGRES_DATABASE = os.environ.get("BENCH_POSTGRES_DATABASE", "pacsone_bench")
ORTHANC_MARIADB_DATABASE = f"{MARIADB_DATABASE}_orthanc"
ORTHANC_POSTGRES_DATABASE = f"{POSTGRES_DATABASE}_orthanc"
OUR_DATABASES = {"mariadb": MARIADB_DATABASE, "postgresql": POSTGRES_DATABASE}
BACKEND_NAMES = {"sqlite": "SQLite", "mariadb": "MariaDB", "postgresql": "PostgreSQL"}
# Our backend -> the index of the Orthanc it is compared with: the same database server. Ours on
# MariaDB falls back to Orthanc's SQLite where orthanc-mysql is not installed (orthanc_index_for).
ORTHANC_INDEX_FOR = {"sqlite": "sqlite", "mariadb": "mysql", "postgresql": "postgresql"}
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


# A stopped server's folder is emptied (its files truncated) but not removed until the run ends
# (remove_retired): this machine's ext4 has no journal, and there allocating an inode skips each
# inode freed in the last 60 to 360 seconds, reading its inode table block to see when
# (fs/ext4/ialloc.c, recently_deleted). Deleting one server's thousands of files (or Orthanc's
# 65,536 folders) made file creation in the next server measured slower: the order of the
# targets, not the targets, decided. Truncating frees the data blocks and no inode.
_retired: list[Path] = []


def retire(folder: Path) -> None:
    for path in folder.rglob("*"):
        try:
            if path.is_file() and not path.is_symlink():
                os.truncate(path, 0)
        except OSError:
            pass
    os.sync()  # that metadata written now, not during the next measurement
    _retired.append(folder)


def remove_retired() -> None:
    """Delete the retired folders, and the files Orthanc left in the folders it was lent: at the
    end of a run, when nothing is measured any more."""
    while _retired:
        subprocess.run(["rm", "-rf", "--", str(_retired.pop())], check=False)
    empty_orthanc_folders()


atexit.register(remove_retired)  # for the scripts that do not call it themselves


QUIET_DISK_SECONDS = 1.0  # no write to the disk for this long: the previous target's work is done
QUIET_DISK_TIMEOUT = 30.0


def _disk_writes(folder: Path) -> tuple[int, int] | None:
    """(sectors written, I/Os in flight) of the disk holding `folder`, from /proc/diskstats."""
    device = os.stat(folder).st_dev
    wanted = f"{os.major(device)} {os.minor(device)}"
    try:
        lines = Path("/proc/diskstats").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if f"{fields[0]} {fields[1]}" == wanted:
            return int(fields[9]), int(fields[11])
    return None


def wait_for_quiet_disk(folder: Path) -> float:
    """Wait until the disk holding `folder` has written nothing for QUIET_DISK_SECONDS (at most
    QUIET_DISK_TIMEOUT); the seconds waited. A database server goes on writing after the
    measurement that used it (InnoDB's page cleaner, PostgreSQL's checkpointer): without this
    wait the target measured next paid for it, and the order of the targets decided."""
    start = time.monotonic()
    last, quiet_since = _disk_writes(folder), time.monotonic()
    if last is None:
        return 0.0
    while time.monotonic() - start < QUIET_DISK_TIMEOUT:
        time.sleep(0.1)
        now = _disk_writes(folder)
        if now[0] != last[0] or now[1]:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_DISK_SECONDS:
            break
    return time.monotonic() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def echo(ae_title: str, port: int) -> bool:
    result = subprocess.run(
        [dcmtk_tool("echoscu"), "-to", "5", "-aet", "BENCHECHO", "-aec", ae_title, "127.0.0.1", str(port)],
        capture_output=True,
    )
    return result.returncode == 0


def wait_for_echo(ae_title: str, port: int, process: subprocess.Popen, log_file: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{ae_title} exited with {process.returncode} before answering; see {log_file}")
        if echo(ae_title, port):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{ae_title} did not answer C-ECHO on port {port} within {START_TIMEOUT}s; see {log_file}")


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- Processes, from /proc --------------------------------------------------------------------------


def peak_rss_kib(pid: int) -> int:
    """VmHWM (the peak resident set size) of a running process, in KiB; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a running process has used so far; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    # After "pid (comm)": state is field 3 of stat(5), utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(p) for p in (task / "children").read_text().split()]
        except FileNotFoundError:
            pass
    return children


# --- MariaDB and PostgreSQL ---------------------------------------------------------------------
# Both local, as CI runs them: MariaDB's root and PostgreSQL's postgres, no password.


def database_url(backend: str, database: str) -> str:
    """DATABASE_URL for our server on MariaDB or PostgreSQL."""
    if backend == "mariadb":
        return f"mysql://root@127.0.0.1:3306/{database}"
    if backend == "postgresql":
        return f"postgres://postgres@127.0.0.1:5432/{database}"
    raise ValueError(f"no database server for {backend!r}")


def backend_unavailable_reason(backend: str) -> str:
    """Empty if the backend's driver imports and its server answers; else why it cannot be used."""
    if backend == "sqlite":
        return ""
    try:
        if backend == "mariadb":
            import MySQLdb  # noqa: F401  (mysqlclient, from requirements-mysql.txt)
        else:
            import psycopg  # noqa: F401  (from requirements-postgres.txt)
    except ImportError as exc:
        requirements = "requirements-mysql.txt" if backend == "mariadb" else "requirements-postgres.txt"
        return f"its driver is not importable ({exc}); pip install -r {requirements}"
    try:
        run_sql(backend, "SELECT 1")
    except Exception as exc:
        port = 3306 if backend == "mariadb" else 5432
        return f"the server at 127.0.0.1:{port} does not answer: {exc}"
    return ""


def available_backends(skip: set[str] = frozenset(), require: set[str] = frozenset()) -> list[str]:
    """SQLite, then MariaDB and PostgreSQL unless skipped or unavailable (said; exit if required)."""
    backends = ["sqlite"]
    for backend in ("mariadb", "postgresql"):
        if backend in skip:
            continue
        reason = backend_unavailable_reason(backend)
        if reason and backend in require:
            sys.exit(f"bench: {BACKEND_NAMES[backend]} is required but {reason}")
        if reason:
            print(f"*** Skipping {BACKEND_NAMES[backend]}: {reason}", flush=True)
            continue
        backends.append(backend)
    return backends


def _connect(backend: str, database: str = ""):
    """An autocommit connection to the database server of `backend` as its administrator: to
    `database`, or (PostgreSQL) to its maintenance database / (MariaDB) to none."""
    if backend == "mariadb":
        import MySQLdb

        connection = MySQLdb.connect(host="127.0.0.1", port=3306, user="root", passwd="", db=database)
        connection.autocommit(True)
        return connection
    import psycopg

    return psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{database or 'postgres'}", autocommit=True)


def run_sql(backend: str, *statements: str, database: str = "", params: tuple = ()) -> list[tuple]:
    """Statements (CREATE/DROP DATABASE, SHOW, queries), each with `params`; the last one's rows."""
    connection = _connect(backend, database)
    try:
        cursor = connection.cursor()
        for statement in statements:
            cursor.execute(statement, params or None)  # no params: a "%" in a statement stays as it is
        return list(cursor.fetchall()) if cursor.description else []
    finally:
        connection.close()


def recreate_database(backend: str, database: str) -> None:
    """Drop the database and create it empty: MariaDB in utf8mb4; PostgreSQL in UTF-8 with the C
    collation, as `setuppacs` creates it."""
    if backend == "mariadb":
        run_sql(backend, f"DROP DATABASE IF EXISTS `{database}`",
                f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    else:
        run_sql(backend, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
                f"CREATE DATABASE \"{database}\" ENCODING 'UTF8' LC_COLLATE 'C' TEMPLATE template0")


def database_tables(backend: str, database: str) -> list[str]:
    """The tables of a MariaDB database, or of a PostgreSQL database's public schema."""
    if backend == "mariadb":
        rows = run_sql(backend, "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
                       params=(database,))
    else:
        rows = run_sql(backend, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
                       database=database)
    return [name for (name,) in rows]


# --- Our server ----------------------------------------------------------------------------------


class ManagedServer:
    """A server started fresh for one measurement: `with Server(...) as server:` prepares its
    folder and ports, starts it, and stops it (also when starting failed half-way)."""

    def prepare(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def __exit__(self, *exc_info) -> None:
        raise NotImplementedError

    def __enter__(self):
        self.prepare()
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self


class OurServer(ManagedServer):
    """runpacs (DICOM only) on a fresh data folder, and a fresh database for MariaDB and PostgreSQL.

    `fill`, if given, is called with the server once its database is set up and before runpacs
    starts (bench/qr.py fills the index there)."""

    ae_title = "PACSONE"

    def __init__(self, backend: str, work_root: Path, log_dir: Path, label: str,
                 scp_workers: int | None = None, database: str | None = None, fill=None):
        self.backend = backend  # "sqlite", "mariadb" or "postgresql"
        self.database = database or OUR_DATABASES.get(backend)  # MariaDB's or PostgreSQL's
        self.work_root = work_root
        self.log_file = log_dir / f"ours-{label}.log"
        self.scp_workers = scp_workers
        self.fill = fill
        self.port = 0
        self.data_dir: Path | None = None
        self.process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        env.update(
            PACS_DATA_DIR=str(self.data_dir),
            PACS_DICOM_PORT=str(self.port),
            PACS_AE_TITLE=self.ae_title,
            PACS_TASKS_SYNC="false",
            PACS_ROOT_PASSWORD="bench-root-password-not-used",
            PACS_LOG_LEVEL="INFO",  # wait_for_workers reads the workers' INFO lines
            PYTHONUNBUFFERED="1",
        )
        env.pop("PACS_DICOM_INSTANCES", None)
        if self.backend != "sqlite":
            env["DATABASE_URL"] = database_url(self.backend, self.database)
        if self.scp_workers:
            env["PACS_SCP_WORKERS"] = str(self.scp_workers)
        return env

    def manage(self, *args: str, log) -> subprocess.CompletedProcess:
        return subprocess.run([str(PYTHON), "manage.py", *args], cwd=REPO, env=self.env(),
                              stdout=log, stderr=subprocess.STDOUT, check=True)

    def prepare(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"ours-{self.backend}-", dir=self.work_root)).resolve()
        self.port = free_port()

    def start(self) -> None:
        self.set_up()
        if self.fill is not None:
            self.fill(self)
        self.launch()

    def set_up(self) -> None:
        """A fresh database (MariaDB, PostgreSQL), then `setuppacs` on it and the data folder."""
        if self.backend != "sqlite":
            recreate_database(self.backend, self.database)
        with open(self.log_file, "w") as log:
            self.manage("setuppacs", log=log)

    def launch(self) -> None:
        """runpacs --only dicom, waiting until every SCP worker serves."""
        with open(self.log_file, "a") as log:
            self.process = subprocess.Popen(
                [str(PYTHON), "manage.py", "runpacs", "--only", "dicom"],
                cwd=REPO, env=self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        wait_for_echo(self.ae_title, self.port, self.process, self.log_file)
        self.wait_for_workers()

    def wait_for_workers(self) -> None:
        """C-ECHO answers as soon as one worker serves; wait until every worker the supervisor
        started has logged that it serves the port (they share the supervisor's socket)."""
        ready_line = f"dicom scp listening ae={self.ae_title} port={self.port}"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            workers = len(self.worker_pids())
            if workers and self.log_file.read_text().count(ready_line) >= workers:
                return
            time.sleep(0.2)
        raise RuntimeError(f"not all SCP workers are listening on port {self.port}; see {self.log_file}")

    def __exit__(self, *exc_info) -> None:
        if self.process is not None:
            stop_process(self.process)
        if self.data_dir is not None:
            retire(self.data_dir)

    def worker_pids(self) -> list[int]:
        return child_pids(self.process.pid) if self.process else []

    def peak_rss_mib(self) -> float:
        return sum(peak_rss_kib(pid) for pid in self.worker_pids()) / 1024

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.worker_pids())

    def stored_instances(self) -> int:
        result = subprocess.run([str(PYTHON), "manage.py", "archivestats", "--json"], cwd=REPO,
                                env=self.env(), capture_output=True, text=True, check=True)
        return json.loads(result.stdout)["instances"]

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


# --- Orthanc -------------------------------------------------------------------------------------


def orthanc_config(folder: Path, dicom_port: int, http_port: int) -> dict:
    return {
        "Name": "bench",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "DicomAet": OrthancServer.ae_title,
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "HttpServerEnabled": True,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [],
        "DicomServerEnabled": True,
        "DicomCheckCalledAet": False,
        "DicomCheckModalityHost": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomModalities": {},
        "OrthancPeers": {},
    }


@dataclass(frozen=True)
class IndexPlugin:
    """One of Debian's Orthanc index plugins: its library and package, the database server it
    uses (run_sql's backend), its configuration section and connection settings."""

    library: str
    package: str
    backend: str  # "mariadb" or "postgresql"
    section: str  # the configuration's key
    connection: dict


INDEX_PLUGINS = {
    # orthanc-mysql 4.3 (the Orthanc Book's "MySQL/MariaDB plugins" page): TCP to the server
    # ours uses, as ours connects; an empty UnixSocket makes the plugin use Host and Port.
    "mysql": IndexPlugin(ORTHANC_MYSQL_PLUGIN, "orthanc-mysql", "mariadb", "MySQL", {
        "Host": "127.0.0.1", "Port": 3306, "UnixSocket": "", "Username": "root", "Password": "",
        "EnableSsl": False,
    }),
    # orthanc-postgresql 4.0 (the Orthanc Book's "PostgreSQL plugins" page).
    "postgresql": IndexPlugin(ORTHANC_POSTGRESQL_PLUGIN, "orthanc-postgresql", "postgresql", "PostgreSQL", {
        "Host": "127.0.0.1", "Port": 5432, "Username": "postgres", "Password": "", "EnableSsl": False,
    }),
}
ORTHANC_DATABASES = {"mysql": ORTHANC_MARIADB_DATABASE, "postgresql": ORTHANC_POSTGRES_DATABASE}


def with_plugin_index(config: dict, index: str, database: str) -> dict:
    """The configuration with Orthanc's index in a MariaDB or PostgreSQL database through
    Debian's plugin (INDEX_PLUGINS). The DICOM files stay in StorageDirectory. The other options
    keep the plugin's defaults, among them one connection to the database, as Orthanc's SQLite
    index has."""
    plugin = INDEX_PLUGINS[index]
    return {
        **config,
        "Plugins": [*config.get("Plugins", []), plugin.library],
        plugin.section: {
            "EnableIndex": True,
            "EnableStorage": False,
            **plugin.connection,
            "Database": database,
            "Lock": False,  # no lock held on the database (a fresh one per run anyway)
            "IndexConnectionsCount": 1,  # the default, written out: Orthanc logs "will use 1 connection(s)"
        },
    }


def orthanc_index_for(backend: str) -> str:
    """The index of the Orthanc our `backend` is compared with (ORTHANC_INDEX_FOR): MariaDB's is
    Orthanc's SQLite when orthanc-mysql is not installed."""
    index = ORTHANC_INDEX_FOR[backend]
    if index == "mysql" and not Path(ORTHANC_MYSQL_PLUGIN).exists():
        return "sqlite"
    return index


def available_orthanc_indexes(backends: list[str], require: set[str] = frozenset()) -> list[str]:
    """The indexes of the Orthancs our backends are compared with (orthanc_index_for), those
    whose plugin is installed (a missing one is said; exit if required). Without orthanc-mysql,
    ours on MariaDB is compared with Orthanc's SQLite, and said so."""
    if "mariadb" in backends and orthanc_index_for("mariadb") == "sqlite":
        print(f"*** {ORTHANC_MYSQL_PLUGIN} is missing (apt-get install orthanc-mysql): ours on MariaDB is "
              f"compared with Orthanc on SQLite", flush=True)
    wanted = {orthanc_index_for(backend) for backend in backends}
    indexes = [index for index in ("sqlite", "mysql", "postgresql") if index in wanted]
    if "postgresql" in indexes and not Path(ORTHANC_POSTGRESQL_PLUGIN).exists():
        reason = f"{ORTHANC_POSTGRESQL_PLUGIN} is missing (apt-get install orthanc-postgresql)"
        if "postgresql" in require:
            sys.exit(f"bench: Orthanc on PostgreSQL is required but {reason}")
        print(f"*** Skipping Orthanc on PostgreSQL: {reason}", flush=True)
        indexes.remove("postgresql")
    return indexes


class OrthancServer(ManagedServer):
    """A private Orthanc with its own configuration and storage folder, its index on SQLite (in
    its folder) or on a fresh database through a plugin: on MariaDB (index="mysql") or on
    PostgreSQL (index="postgresql"); `database` defaults to ORTHANC_DATABASES'."""

    ae_title = "ORTHANC"

    def __init__(self, work_root: Path, log_dir: Path, label: str, index: str = "sqlite",
                 database: str | None = None, durable: bool = False):
        self.work_root = work_root
        self.index = index  # "sqlite", "mysql" or "postgresql"
        self.durable = durable  # as durable as ours (durability.py), not as shipped
        self.database = database or ORTHANC_DATABASES.get(index)  # the plugin's
        self.log_file = log_dir / f"orthanc-{label}.log"
        self.folder: Path | None = None
        self.port = self.http_port = 0
        self.process: subprocess.Popen | None = None

    def prepare(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="orthanc-", dir=self.work_root)).resolve()
        self.port, self.http_port = free_port(), free_port()

    def start(self) -> None:
        settings = orthanc_config(self.folder, self.port, self.http_port)
        plugin = INDEX_PLUGINS.get(self.index)
        if plugin:
            recreate_database(plugin.backend, self.database)
            settings = with_plugin_index(settings, self.index, self.database)
        config = self.folder / "orthanc.json"
        config.write_text(json.dumps(settings, indent=2))
        # Orthanc's DICOM server is Debian's DCMTK, which leaves Nagle's algorithm on (about
        # 40 ms per C-STORE response) unless TCP_NODELAY is set in its environment.
        env = dict(os.environ, TCP_NODELAY="1")
        if self.durable:
            lend_orthanc_folders(self.storage)
            env.update(durable_environment(self.storage))
        with open(self.log_file, "w") as log:
            self.process = subprocess.Popen([ORTHANC_BINARY, str(config)], cwd=self.folder, env=env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_echo(self.ae_title, self.port, self.process, self.log_file)
        if plugin:
            self.check_plugin_index(plugin)

    @property
    def storage(self) -> Path:
        return Path(orthanc_config(self.folder, self.port, self.http_port)["StorageDirectory"])

    def check_plugin_index(self, plugin: IndexPlugin) -> None:
        """That Orthanc really runs on the plugin: it names the plugin as its database backend
        (GET /system), and the plugin's tables are in the database (MariaDB keeps the case of
        their names, PostgreSQL folds it)."""
        backend_plugin = self.rest("/system").get("DatabaseBackendPlugin")
        tables = database_tables(plugin.backend, self.database)
        if not backend_plugin or "resources" not in {table.lower() for table in tables}:
            raise RuntimeError(f"Orthanc is not on its {plugin.section} index (backend plugin {backend_plugin}, "
                               f"tables of {self.database}: {tables}); see {self.log_file}")

    def __exit__(self, *exc_info) -> None:
        if self.process is not None:
            stop_process(self.process)
        if self.folder is not None:
            retire(self.folder)
            if self.durable and self.storage.exists():
                take_back_orthanc_folders(self.storage)

    def peak_rss_mib(self) -> float:
        return peak_rss_kib(self.process.pid) / 1024 if self.process else 0.0

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid) if self.process else 0.0

    def stored_instances(self) -> int:
        return int(self.rest("/statistics")["CountInstances"])

    def rest(self, path: str) -> dict:
        """GET a JSON resource of Orthanc's REST API, never through an HTTP proxy."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{self.http_port}{path}", timeout=30) as response:
            return json.load(response)

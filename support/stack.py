"""The compose topology on this machine, without containers (`python -m scripts.stack`).

One migration, two API replicas (gunicorn, two workers each, the Dockerfile's command) and a
job log worker (compose's `worker` command) behind nginx (deploy/nginx/api.conf with local
addresses), against PgBouncer in transaction mode in front of PostgreSQL and a Redis Cluster
of three masters. Every process runs in a session of its own from one directory, on free
ports, so nothing else on the machine is touched.
"""

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from support.deployment import compose_command, dockerfile_command
from support.nginx import start_nginx
from support.processes import BIN, ROOT, Process, binary, free_port, wait_for_port
from support.servers import PostgresServer

DEFAULT_DIR = Path(tempfile.gettempdir()) / "fastapi-reference-stack"
DATABASE = "app"
REPLICAS = 2
WORKERS_PER_REPLICA = 2
REDIS_NODES = 3


@dataclass
class Stack:
    """The processes of one stack; `up()` starts them in order, `down()` stops them."""

    root: Path
    settings: Mapping[str, str] = field(default_factory=dict)
    database_url: str | None = None
    # A streaming replica of the private PostgreSQL, serving reads (DATABASE_READ_URL).
    read_replica: bool = False
    postgres: PostgresServer | None = None
    standby: PostgresServer | None = None
    processes: dict[str, Process] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['nginx']}"

    def replica_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[f'api-{index}']}"

    def up(self) -> None:
        for name in ("nginx", "pgbouncer", "redis-server", "redis-cli"):
            binary(name)
        self.root.mkdir(parents=True, exist_ok=True)
        # PgBouncer runs as another account when this is root, and reads its files from here.
        self.root.chmod(0o755)
        try:
            direct = self._postgres()
            pooled = self._pgbouncer(direct)
            redis_url = self._redis_cluster()
            environment = self._environment(direct, pooled, redis_url)
            if self.read_replica:
                environment["DATABASE_READ_URL"] = self._standby()
            self._run(compose_command("migrate"), environment | {"DATABASE_URL": direct})
            for index in range(1, REPLICAS + 1):
                self._replica(index, environment)
            self._worker(environment)
            self._nginx()
            self._wait_until_ready()
        except BaseException:
            self.down()
            raise
        self.save()

    def _postgres(self) -> str:
        if self.database_url is not None:
            return self.database_url
        self.postgres = PostgresServer()
        self.postgres.start()
        self.processes["postgres"] = self.postgres
        self.ports["postgres"] = self.postgres.port
        return self.postgres.create_database(DATABASE)

    def _standby(self) -> str:
        """A hot standby of the private PostgreSQL, copied with pg_basebackup -R."""
        if self.postgres is None:
            raise SystemExit("--read-replica needs the stack's own PostgreSQL")
        self.standby = PostgresServer(primary=self.postgres)
        self.standby.start()
        self.processes["postgres-replica"] = self.standby
        self.ports["postgres-replica"] = self.standby.port
        self.urls["DATABASE_READ_URL"] = url = self.standby.url(DATABASE)
        return url

    def _pgbouncer(self, direct: str) -> str:
        match = re.fullmatch(r"postgresql\+asyncpg://([^@/]+)@([^:/]+):(\d+)/(\w+)", direct)
        if match is None:
            raise SystemExit(f"use a URL like postgresql+asyncpg://user@host:port/db: {direct}")
        user, host, port, database = match.groups()
        directory = self.root / "pgbouncer"
        directory.mkdir(exist_ok=True)
        self.ports["pgbouncer"] = listen = free_port()
        (directory / "userlist.txt").write_text(f'"{user}" ""\n')
        (directory / "pgbouncer.ini").write_text(
            f"""[databases]
{DATABASE} = host={host} port={port} dbname={database} user={user}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {directory / "userlist.txt"}
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
"""
        )
        # PgBouncer refuses to run as root.
        account = "postgres" if os.geteuid() == 0 else None
        if account is not None:
            for path in (directory, *directory.iterdir()):
                shutil.chown(path, account)
        process = Process()
        process.spawn(
            [binary("pgbouncer"), str(directory / "pgbouncer.ini")],
            log=directory / "pgbouncer.log",
            user=account,
        )
        self.processes["pgbouncer"] = process
        wait_for_port(listen)
        return f"postgresql+asyncpg://{user}@127.0.0.1:{listen}/{DATABASE}"

    def _redis_cluster(self) -> str:
        nodes = []
        for index in range(1, REDIS_NODES + 1):
            directory = self.root / f"redis-{index}"
            directory.mkdir(exist_ok=True)
            port = self.ports[f"redis-{index}"] = free_port()
            process = Process()
            # The bus would default to port + 10000, which may be taken or past 65535.
            bus = free_port()
            process.spawn(
                [
                    *(binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1"),
                    *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                    *("--cluster-port", str(bus)),
                    *("--save", "", "--appendonly", "no", "--dir", str(directory)),
                ],
                log=directory / "redis.log",
            )
            self.processes[f"redis-{index}"] = process
            wait_for_port(port)
            nodes.append(f"127.0.0.1:{port}")
        subprocess.run(  # noqa: S603 - fixed command
            [
                binary("redis-cli"),
                "--cluster",
                "create",
                *nodes,
                "--cluster-yes",
                "--cluster-replicas",
                "0",
            ],
            check=True,
            capture_output=True,
        )
        first = self.ports["redis-1"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            info = subprocess.run(  # noqa: S603 - fixed command
                [binary("redis-cli"), "-p", str(first), "cluster", "info"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            if "cluster_state:ok" in info:
                return f"redis://127.0.0.1:{first}/0"
            time.sleep(0.1)
        raise TimeoutError("the Redis Cluster did not reach cluster_state:ok within 20 s")

    def _environment(self, direct: str, pooled: str, redis_url: str) -> dict[str, str]:
        self.urls = {"DATABASE_URL": pooled, "OUTBOX_LISTEN_URL": direct, "REDIS_URL": redis_url}
        return {
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "ENVIRONMENT": "production",
            "SECRET_KEY": secrets.token_urlsafe(48),
            "DATABASE_URL": pooled,
            "DB_PGBOUNCER": "true",
            "OUTBOX_LISTEN_URL": direct,
            "REDIS_URL": redis_url,
            "REDIS_CLUSTER": "true",
            "WEB_CONCURRENCY": str(WORKERS_PER_REPLICA),
            # Four workers share PgBouncer's twenty server connections.
            "DB_POOL_SIZE": "5",
            "DB_MAX_OVERFLOW": "5",
            # nginx is the only peer whose X-Forwarded-For is believed.
            "TRUSTED_PROXIES": "127.0.0.1/32",
            **self.settings,
        }

    def _run(self, command: list[str], environment: Mapping[str, str]) -> None:
        result = subprocess.run(  # noqa: S603 - fixed commands of the compose file
            command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")

    def _replica(self, index: int, environment: Mapping[str, str]) -> None:
        name = f"api-{index}"
        directory = self.root / name
        directory.mkdir(exist_ok=True)
        port = self.ports[name] = free_port()
        command = [
            part.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for part in dockerfile_command()
        ]
        process = Process()
        process.spawn(
            command,
            log=directory / "gunicorn.log",
            env={
                **environment,
                # As compose's api service: deliveries are the worker's.
                "OUTBOX_ENABLED": "false",
                "PROMETHEUS_MULTIPROC_DIR": str(directory / "metrics"),
            },
        )
        self.processes[name] = process
        wait_for_port(port, timeout=30)

    def _worker(self, environment: Mapping[str, str]) -> None:
        directory = self.root / "worker"
        directory.mkdir(exist_ok=True)
        self.ports["worker-metrics"] = free_port()
        process = Process()
        process.spawn(
            compose_command("worker"),
            log=directory / "worker.log",
            env={**environment, "WORKER_METRICS_PORT": str(self.ports["worker-metrics"])},
        )
        self.processes["worker"] = process
        wait_for_port(self.ports["worker-metrics"], timeout=30)

    def _nginx(self) -> None:
        upstreams = [self.ports[f"api-{index}"] for index in range(1, REPLICAS + 1)]
        self.processes["nginx"], self.ports["nginx"] = start_nginx(self.root / "nginx", upstreams)

    def _wait_until_ready(self, seconds: float = 30.0) -> None:
        deadline = time.monotonic() + seconds
        urls = [self.replica_url(index) for index in range(1, REPLICAS + 1)] + [self.url]
        for url in urls:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url} was not ready within {seconds:g} s")
                time.sleep(0.1)

    def save(self) -> None:
        state = {
            "pids": {
                name: process.popen.pid
                for name, process in self.processes.items()
                if process.popen is not None
            },
            "postgres_root": str(self.postgres.root) if self.postgres else None,
            "replica_root": str(self.standby.root) if self.standby else None,
            "ports": self.ports,
            "urls": self.urls | {"STACK_URL": self.url},
        }
        (self.root / "stack.json").write_text(json.dumps(state, indent=2))

    def down(self) -> None:
        """Stop in the reverse order of `up`: the entry point first, the data last."""
        for name in reversed(list(self.processes)):
            process = self.processes.pop(name)
            if process.running:
                process.stop()
        for server in (self.standby, self.postgres):
            if server is not None:
                server.destroy()
        shutil.rmtree(self.root, ignore_errors=True)


def alive(pid: int) -> bool:
    """Running, as opposed to gone or exited and not yet reaped by whoever adopted it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def stop_recorded(root: Path) -> None:
    """`down` from another process: stop what `up` recorded, newest first."""
    state = json.loads((root / "stack.json").read_text())
    for name, pid in reversed(list(state["pids"].items())):
        # PostgreSQL's fast shutdown; every other process takes SIGTERM to its group.
        with contextlib.suppress(ProcessLookupError):
            if name.startswith("postgres"):
                os.kill(pid, signal.SIGINT)
            else:
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.05)
    for data in (state["postgres_root"], state.get("replica_root")):
        if data:
            shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)

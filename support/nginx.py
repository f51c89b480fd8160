"""nginx running the shipped deploy/nginx/api.conf, with this machine's addresses."""

import re
from pathlib import Path

from support.processes import ROOT, Process, binary, free_port, wait_for_port

UPSTREAM = re.compile(r"^(\s*)server api:8000(.*);$", re.MULTILINE)
LISTEN = re.compile(r"^(\s*)listen 8000;$", re.MULTILINE)


def render_nginx(upstreams: list[int], port: int, prefix: Path, site: str | None = None) -> str:
    """deploy/nginx/api.conf (or another site in its shape) with this machine's addresses,
    inside a main configuration."""
    if site is None:
        site = (ROOT / "deploy/nginx/api.conf").read_text()
    site, found = UPSTREAM.subn(
        lambda match: "\n".join(
            f"{match[1]}server 127.0.0.1:{upstream}{match[2]};" for upstream in upstreams
        ),
        site,
    )
    site, listens = LISTEN.subn(rf"\1listen 127.0.0.1:{port};", site)
    if (found, listens) != (1, 1):
        raise RuntimeError("the nginx site lost its `server api:8000` or `listen 8000`")
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
worker_processes 2;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log {prefix / "access.log"};
{temp}
{site}
}}
"""


def start_nginx(prefix: Path, upstreams: list[int], site: str | None = None) -> tuple[Process, int]:
    """nginx serving render_nginx() from `prefix`, listening: its process and its port."""
    prefix.mkdir(parents=True, exist_ok=True)
    # Run as root, nginx's workers are `nobody`, and they buffer large bodies under here.
    prefix.chmod(0o755)
    port = free_port()
    (prefix / "nginx.conf").write_text(render_nginx(upstreams, port, prefix, site))
    process = Process()
    process.spawn(
        [
            *(binary("nginx"), "-p", str(prefix), "-c", str(prefix / "nginx.conf")),
            *("-e", str(prefix / "error.log")),
        ],
        log=prefix / "nginx.log",
    )
    try:
        wait_for_port(port, process=process)
    except (TimeoutError, RuntimeError):
        process.stop()
        raise RuntimeError(f"nginx did not start:\n{(prefix / 'nginx.log').read_text()}") from None
    return process, port

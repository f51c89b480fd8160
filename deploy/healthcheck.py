"""The container's health check: GET /health with a Host header the service accepts.

The service answers 400 to a Host outside ALLOWED_HOSTS, so the check names the first
entry (a `*.example.com` pattern becomes `health.example.com`; `*` any name). Standard
library only, and no import of the application: it runs every few seconds.
"""

import os
import sys
import urllib.request

PORT = int(os.environ.get("HEALTHCHECK_PORT", "8000"))


def host_header(allowed_hosts: str) -> str:
    first = next((part.strip() for part in allowed_hosts.split(",") if part.strip()), "*")
    if first == "*":
        return "localhost"
    if first.startswith("*."):
        return "health" + first[1:]
    return first


def main() -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/health",
        headers={"Host": host_header(os.environ.get("ALLOWED_HOSTS", "*"))},
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - loopback
            return 0 if response.status == 200 else 1
    except OSError as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

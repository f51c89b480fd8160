"""The gunicorn worker class: uvicorn's, without the `Server` header.

`uvicorn --no-server-header` covers `make run`; gunicorn builds uvicorn's config from its
own settings instead, so the worker class has to switch the header off.
"""

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker as _UvicornWorker


# uvicorn-worker ships no type information, so its class is Any to mypy.
class UvicornWorker(_UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **_UvicornWorker.CONFIG_KWARGS,
        "server_header": False,
    }

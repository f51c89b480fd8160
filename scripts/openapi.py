"""The API contract as a file: `python -m scripts.openapi check|write`.

`docs/openapi.json` is the committed contract. `check` fails when the code's document makes
a breaking change to it (a removed path, method, response field or enum value; a newly
required request field or parameter; a changed operation id, which generated clients name
their methods after) that CHANGELOG.md does not acknowledge, and when the
committed file is out of date. `write` regenerates the file, refusing while a breaking
change is unacknowledged. A change is acknowledged by quoting the line `check` prints for
it in CHANGELOG.md.
"""

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app import __version__
from app.core.config import Settings
from app.main import create_app

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "docs" / "openapi.json"
CHANGELOG = ROOT / "CHANGELOG.md"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

Schema = dict[str, Any]


def generate() -> Schema:
    """The document the code serves, independent of the local environment's settings."""
    settings = Settings(
        _env_file=None,
        docs_enabled=True,
        project_name="FastAPI Reference Service",
        version=__version__,
    )
    return create_app(settings).openapi()


def render(document: Schema) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class _Resolver:
    def __init__(self, document: Schema) -> None:
        self._schemas: dict[str, Schema] = document.get("components", {}).get("schemas", {})

    def resolve(self, schema: Schema) -> Schema:
        seen = set()
        while "$ref" in schema and schema["$ref"] not in seen:
            seen.add(schema["$ref"])
            schema = self._schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
        return schema

    def fields(self, schema: Schema, prefix: str = "", depth: int = 0) -> Iterator[str]:
        """Dotted names of every property reachable from `schema` (`items[].price`)."""
        schema = self.resolve(schema)
        if depth > 8:
            return
        for variant in schema.get("anyOf", []) + schema.get("allOf", []):
            yield from self.fields(variant, prefix, depth + 1)
        if "items" in schema:
            yield from self.fields(schema["items"], f"{prefix}[]", depth + 1)
        for name, child in schema.get("properties", {}).items():
            path = f"{prefix}.{name}" if prefix else name
            yield path
            yield from self.fields(child, path, depth + 1)

    def enums(self, schema: Schema, depth: int = 0) -> set[str]:
        schema = self.resolve(schema)
        values = {str(value) for value in schema.get("enum", [])}
        if depth < 8:
            for variant in schema.get("anyOf", []) + schema.get("allOf", []):
                values |= self.enums(variant, depth + 1)
        return values


def _operations(document: Schema) -> dict[str, Schema]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in _METHODS
    }


def _webhook_payloads(document: Schema) -> dict[str, Schema]:
    """The body of each request the service sends (the document's `webhooks`)."""
    return {
        f"{method.upper()} {name}": _body_schema(operation)
        for name, item in document.get("webhooks", {}).items()
        for method, operation in item.items()
        if method in _METHODS
    }


def _success_schemas(operation: Schema) -> Iterator[tuple[str, Schema]]:
    for status, response in operation.get("responses", {}).items():
        if str(status).startswith("2"):
            for media in response.get("content", {}).values():
                yield str(status), media.get("schema", {})


def _body_schema(operation: Schema) -> Schema:
    for media in operation.get("requestBody", {}).get("content", {}).values():
        schema: Schema = media.get("schema", {})
        return schema
    return {}


def _required_inputs(resolver: _Resolver, operation: Schema) -> set[str]:
    required = {
        f"parameter {parameter['in']} {parameter['name']}"
        for parameter in operation.get("parameters", [])
        if parameter.get("required")
    }
    body = resolver.resolve(_body_schema(operation))
    if operation.get("requestBody", {}).get("required"):
        required |= {f"body field {name}" for name in body.get("required", [])}
    return required


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """One line per change that can break a client written against `old`."""
    changes: list[str] = []
    old_ops, new_ops = _operations(old), _operations(new)
    old_paths, new_paths = set(old.get("paths", {})), set(new.get("paths", {}))
    changes += [f"removed path: {path}" for path in sorted(old_paths - new_paths)]
    for key in sorted(old_ops.keys() - new_ops.keys()):
        if key.split(" ", 1)[1] in new_paths:
            changes.append(f"removed method: {key}")
    was, now = _Resolver(old), _Resolver(new)
    for key in sorted(old_ops.keys() & new_ops.keys()):
        before, after = old_ops[key], new_ops[key]
        if before.get("operationId") != after.get("operationId"):
            changes.append(
                f"changed operation id: {key} {before.get('operationId')} -> "
                f"{after.get('operationId')}"
            )
        new_success = dict(_success_schemas(after))
        for status, schema in _success_schemas(before):
            kept = set(now.fields(new_success.get(status, {})))
            for field in sorted(set(was.fields(schema)) - kept):
                changes.append(f"removed response field: {key} {status} {field}")
        added = _required_inputs(now, after) - _required_inputs(was, before)
        changes += [f"newly required: {key} {name}" for name in sorted(added)]
    # A webhook's receivers read its payload as clients read a response.
    old_hooks, new_hooks = _webhook_payloads(old), _webhook_payloads(new)
    changes += [f"removed webhook: {key}" for key in sorted(old_hooks.keys() - new_hooks.keys())]
    for key in sorted(old_hooks.keys() & new_hooks.keys()):
        kept = set(now.fields(new_hooks[key]))
        for field in sorted(set(was.fields(old_hooks[key])) - kept):
            changes.append(f"removed webhook payload field: {key} {field}")
    old_components = old.get("components", {}).get("schemas", {})
    new_components = new.get("components", {}).get("schemas", {})
    for name in sorted(old_components.keys() & new_components.keys()):
        gone = was.enums(old_components[name]) - now.enums(new_components[name])
        changes += [f"removed enum value: {name} {value}" for value in sorted(gone)]
        for field, schema in old_components[name].get("properties", {}).items():
            after_field = new_components[name].get("properties", {}).get(field, {})
            gone = was.enums(schema) - now.enums(after_field)
            changes += [f"removed enum value: {name}.{field} {value}" for value in sorted(gone)]
    return changes


def unacknowledged(changes: list[str], changelog: str) -> list[str]:
    return [change for change in changes if change not in changelog]


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command not in ("check", "write"):
        print("usage: python -m scripts.openapi check|write", file=sys.stderr)
        return 2
    document = generate()
    committed: Schema = json.loads(CONTRACT.read_text()) if CONTRACT.exists() else {}
    changelog = CHANGELOG.read_text() if CHANGELOG.exists() else ""
    pending = unacknowledged(breaking_changes(committed, document), changelog)
    if pending:
        print("Breaking changes to docs/openapi.json not acknowledged in CHANGELOG.md:")
        for change in pending:
            print(f"  {change}")
        print("Quote each line in CHANGELOG.md if the break is intended.")
        return 1
    if command == "write":
        CONTRACT.parent.mkdir(exist_ok=True)
        CONTRACT.write_text(render(document))
        return 0
    if CONTRACT.exists() and CONTRACT.read_text() == render(document):
        return 0
    print("docs/openapi.json is out of date: run `make openapi` and commit it.")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

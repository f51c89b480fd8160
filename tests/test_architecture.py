"""The rules of the code's shape that no linter states: each test names the rule it keeps."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The platform's door, and the composition root that fills the app's state in its lifespan.
READS_APP_STATE = {ROOT / "app/core/deps.py", ROOT / "app/main.py"}


def _reads_state(node: ast.AST) -> bool:
    """`x.app.state`, `app.state` or `request.state`: the app's (or a request's) state."""
    if not isinstance(node, ast.Attribute) or node.attr != "state":
        return False
    owner = node.value
    return (isinstance(owner, ast.Attribute) and owner.attr == "app") or (
        isinstance(owner, ast.Name) and owner.id in {"app", "application", "request"}
    )


def test_only_the_platform_door_reads_the_apps_state() -> None:
    readers = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in sorted((ROOT / "app").rglob("*.py"))
        if path not in READS_APP_STATE
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Attribute) and _reads_state(node)
    ]
    assert readers == [], "read platform objects through app.core.deps instead"


def test_the_state_check_sees_each_way_of_writing_it() -> None:
    for source in ("request.app.state.resources", "app.state.settings", "request.state.x"):
        assert any(_reads_state(node) for node in ast.walk(ast.parse(source)))
    assert not any(_reads_state(node) for node in ast.walk(ast.parse("platform.settings")))

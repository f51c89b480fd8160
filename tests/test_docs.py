"""The README and the pages under docs/ name only what exists: modules, files, dependency
aliases, settings, and the pages and headings their links point at. A rename in the code
that leaves the docs behind fails here."""

import ast
import importlib
import re
from functools import cache
from pathlib import Path

import pytest

from app.core.config import Settings
from scripts import settings_docs
from support.processes import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Environment variables the docs present beside the settings that are not Settings fields,
# each read by something else.
NOT_SETTINGS = {
    # The test suite's backends (tests/conftest.py), never the service's.
    "TEST_DATABASE_URL": "the suite's PostgreSQL",
    "TEST_REDIS_URL": "the suite's Redis",
    "TEST_DATABASE_READ_URL": "a streaming replica of the suite's PostgreSQL",
    # Read by the OpenTelemetry exporter itself, which the service leaves them to.
    "OTEL_EXPORTER_OTLP_HEADERS": "the collector's headers, read by the exporter",
    "OTEL_EXPORTER_OTLP_TIMEOUT": "the export timeout, read by the exporter",
}

# `app.` names that are attributes of a FastAPI application, not modules.
APPLICATION_ATTRIBUTES = {"app.state", "app.dependency_overrides"}

CODE_ROOTS = ("app", "tests", "scripts", "support", "deploy", "bench", "alembic", "docs")


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def backticked(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", text)


@cache
def setting_names() -> frozenset[str]:
    return frozenset(name.upper() for name in Settings.model_fields)


@cache
def setting_prefixes() -> frozenset[str]:
    return frozenset(name.split("_", 1)[0] for name in setting_names() if "_" in name)


@cache
def constants() -> frozenset[str]:
    """Module-level UPPER_CASE names in the application: limits the docs quote that are
    constants of the code, not settings (`MAX_ORDER_TOTAL`)."""
    names: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name) and t.id.isupper())
    return frozenset(names)


@cache
def dependency_aliases() -> frozenset[str]:
    """Every `Name = Annotated[..., Depends(...)]` (or `Security(...)`) in the application."""
    names: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            source = ast.unparse(value)
            if (
                isinstance(target, ast.Name)
                and source.startswith("Annotated[")
                and re.search(r"\b(Depends|Security)\(", source)
            ):
                names.add(target.id)
    return frozenset(names)


def resolves(dotted: str) -> bool:
    """`app.a.b.Name` names a module, or an attribute of the longest module prefix."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            target: object = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_app_module_named_exists(page: Path) -> None:
    text = page.read_text()
    names = set(re.findall(r"(?<![\w/.-])(app(?:\.[A-Za-z_]\w*)+)", text))
    for name in sorted(names - APPLICATION_ATTRIBUTES):
        assert resolves(name), name


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_file_path_named_exists(page: Path) -> None:
    roots = "|".join(CODE_ROOTS)
    pattern = rf"(?<![\w/.:-])((?:{roots})/[\w./*<>{{}}-]*[\w*/>}}])"
    for path in sorted(set(re.findall(pattern, page.read_text()))):
        # Placeholders (<noun>, {id}) are patterns, not paths.
        if "<" in path or "{" in path:
            continue
        assert list(ROOT.glob(path.rstrip("/"))), path
    # The top-level documents: CHANGELOG.md, SECURITY.md, AGENTS.md.
    for name in sorted(set(re.findall(r"(?<![\w/.-])([A-Z]+\.md)\b", page.read_text()))):
        assert (ROOT / name).exists(), name


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_dependency_alias_named_exists(page: Path) -> None:
    pattern = r"[A-Z]\w*(?:Dep|Writer|Reader|Admin)|(?:Admin|Current)User"
    named = {name for name in backticked(page.read_text()) if re.fullmatch(pattern, name)}
    # A reader class shares the suffix with the principal aliases; only aliases are checked.
    classes = {"ItemReader"}
    assert named - classes <= dependency_aliases(), sorted(named - classes - dependency_aliases())


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_setting_named_is_a_setting(page: Path) -> None:
    for span in backticked(page.read_text()):
        name = span.split("=", 1)[0]
        if not re.fullmatch(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9*]+)+", name):
            continue
        if name.split("_", 1)[0] not in setting_prefixes() or name in NOT_SETTINGS:
            continue
        if name in constants():
            continue
        if name.endswith("*"):
            assert any(s.startswith(name[:-1]) for s in setting_names()), name
        else:
            assert name in setting_names(), name


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return {slug(heading) for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_resolves(page: Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), target
        if anchor:
            assert anchor in anchors(linked), target


def test_the_allow_lists_name_no_settings() -> None:
    assert not set(NOT_SETTINGS) & setting_names()


def test_the_walkthroughs_set_every_variable_before_using_it() -> None:
    text = (ROOT / "docs/api.md").read_text()
    assigned: set[str] = set()
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            code = line.split(" #", 1)[0] if not line.startswith("#") else ""
            for name in re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", code):
                assert name in assigned, line
            assigned.update(re.findall(r"(?:^|[\s;(])([A-Z_][A-Z0-9_]*)=", code))


def test_the_configuration_page_is_the_one_the_settings_generate() -> None:
    # A new setting needs a description and a section, then `make docs`.
    assert (ROOT / "docs/configuration.md").read_text() == settings_docs.render()


def test_a_setting_without_a_description_stops_the_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    field = Settings.model_fields["db_echo"]
    monkeypatch.setattr(field, "description", None)
    with pytest.raises(settings_docs.UndocumentedSetting, match="db_echo: no description"):
        settings_docs.render()

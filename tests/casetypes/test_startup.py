"""An invalid case type file stops start-up, and the error lists every problem in it.

The API loads ``playbooks/case_types`` plus ``CASE_TYPE_DIRS_EXTRA`` in its lifespan
(``api.deps.load_case_types``); a broken file must stop the process there, with one line per
problem, not at the first request and not one problem per restart.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings
from playbooks.registry import CaseTypeError
from tests.conftest import test_settings

# One file, three independent mistakes: an automation the worker does not know, an owner role
# nobody holds, and an escalation to a role with no staff address.
BROKEN = """\
name: broken_type
version: "1"
title: Broken type
stages:
  - key: first
    title: First
    owner_role: nobody_in_particular
    sla: 4h
    escalations:
      - {level: 1, after_breach: 0h, target: regional_director}
    elements:
      - {key: do_it, kind: automation, title: Do it, action: teleport}
"""


@pytest.fixture
def broken_settings(tmp_path: Path) -> Settings:
    folder = tmp_path / "extra_case_types"
    folder.mkdir()
    (folder / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    settings = test_settings(case_type_dirs_extra=[folder])
    assert "regional_director" not in settings.staff_directory
    assert "nobody_in_particular" not in settings.known_roles()
    return settings


def _assert_every_problem(exc: CaseTypeError) -> None:
    message = str(exc)
    assert message.startswith("3 problems in case types:"), message
    assert len(exc.problems) == 3, exc.problems
    assert all("broken.yaml" in p for p in exc.problems), exc.problems
    automation = [p for p in exc.problems if "unknown automation 'teleport'" in p]
    owner = [p for p in exc.problems if "unknown role 'nobody_in_particular'" in p]
    target = [p for p in exc.problems if "unknown role 'regional_director'" in p]
    assert len(automation) == len(owner) == len(target) == 1, exc.problems
    assert "(element 'do_it').action" in automation[0]
    assert "owner_role" in owner[0]
    assert "escalations[0].target" in target[0]
    for problem in exc.problems:
        assert f"  - {problem}" in message  # each on its own line in what the operator reads


def test_load_case_types_lists_every_problem(broken_settings: Settings) -> None:
    from api.deps import load_case_types

    with pytest.raises(CaseTypeError) as exc:
        load_case_types(broken_settings)
    _assert_every_problem(exc.value)


def test_the_shipped_case_types_load_with_the_same_settings() -> None:
    from api.deps import load_case_types

    registry = load_case_types(test_settings())
    assert "client_onboarding" in registry.names()


async def test_api_lifespan_refuses_to_start(broken_settings: Settings) -> None:
    from api.app import create_app

    app = create_app(broken_settings)
    with pytest.raises(CaseTypeError) as exc:
        async with app.router.lifespan_context(app):
            pytest.fail("the API started with an invalid case type")
    _assert_every_problem(exc.value)
    assert getattr(app.state, "case_types", None) is None


def test_api_test_client_refuses_to_start(broken_settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app

    app = create_app(broken_settings)
    with pytest.raises(CaseTypeError) as exc, TestClient(app):
        pytest.fail("the API served requests with an invalid case type")
    _assert_every_problem(exc.value)


def test_escalation_to_a_role_without_a_staff_address_is_refused(tmp_path: Path) -> None:
    from api.deps import load_case_types

    folder = tmp_path / "extra_case_types"
    folder.mkdir()
    text = BROKEN.replace("nobody_in_particular", "case_manager")
    text = text.replace("regional_director", "operator").replace("teleport", "record")
    (folder / "broken.yaml").write_text(text, encoding="utf-8")
    settings = test_settings(case_type_dirs_extra=[folder])
    assert "operator" not in settings.staff_directory
    with pytest.raises(CaseTypeError) as exc:
        load_case_types(settings)
    assert "'operator'" in str(exc.value)

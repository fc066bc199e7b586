from __future__ import annotations

import pytest
from fastapi import FastAPI

from api.deps import load_case_types
from core.settings import Settings
from playbooks.registry import CaseTypeRegistry
from store.db import SessionFactory
from tests.conftest import test_settings
from tests.web.conftest import _has_module_routes, build_app


@pytest.fixture(scope="module")
def whatif_settings() -> Settings:
    return test_settings()


@pytest.fixture(scope="module")
def registry(whatif_settings: Settings) -> CaseTypeRegistry:
    """The case types in service, loaded as the API and the CLI load them."""
    return load_case_types(whatif_settings)


@pytest.fixture(scope="module")
def console_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("whatif-web")
    return test_settings(data_dir=root, blob_dir=root / "blobs")


@pytest.fixture
def whatif_app(console_settings: Settings, sessions: SessionFactory) -> FastAPI:
    """The in-process app (no Temporal: the what-if never touches a workflow), with the
    what-if router included when ``api.app`` does not include it yet."""
    from api.routes import console_whatif

    app = build_app(console_settings, sessions, None)
    if not _has_module_routes(app, console_whatif.__name__):
        app.include_router(console_whatif.router)
    return app

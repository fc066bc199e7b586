"""``onboarding``: one console script for every process of the product.

onboarding run       the whole embedded dev stack (what `make run` calls)
onboarding worker    a Temporal worker
onboarding api       the HTTP API (uvicorn)
onboarding migrate   Alembic upgrade to head
onboarding screen    batch sanctions re-screening (JSON lines in, JSON lines out)
onboarding notify-preview MILESTONE   render a notification with sample data
onboarding reproject [REF ...|--all]  rebuild engine cases' read-model rows from Temporal
onboarding history import PATH | export PATH [--case-type T] [--since DATE]   case history CSV
onboarding eta fit [PATH] | predict PATH | evaluate PATH   completion-time estimates
onboarding risk evaluate PATH | fit [PATH]   breach prediction vs the 60/40 rule
onboarding whatif --case-type T --playbook DRAFT.yaml [--since DATE]   a draft over history
onboarding dashboard rollup [--since DATE]   refresh the SLA dashboard's daily roll-up
onboarding sanctions load PATH [--source NAME]   install a sanctions list, re-screen clients
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from cli import dashboard, eta, history, reproject, risk, sanctions, screen, whatif
from core.logging import configure_logging
from core.settings import get_settings
from notifications import preview


def _worker(_: argparse.Namespace) -> int:
    from core.database import resolve_database_url
    from workers.main import run_worker

    settings = get_settings()
    url, _server = resolve_database_url(settings)
    asyncio.run(run_worker(settings, url))
    return 0


def _api(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app
    from core.telemetry import install_default_runtime
    from core.tracing import setup_tracing

    settings = get_settings()
    setup_tracing("onboarding-api")
    install_default_runtime()  # the Temporal client's Core logs as JSON lines too
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        log_config=None,  # our JSON logging (core/logging.py)
        access_log=False,  # api/observability.py writes the access line, without raw paths
        timeout_graceful_shutdown=10,
    )
    return 0


def _migrate(_: argparse.Namespace) -> int:
    from core.database import resolve_database_url
    from store.migrate import upgrade_head

    url, _server = resolve_database_url(get_settings())
    upgrade_head(url)
    logging.getLogger("onboarding").info("migrations applied")
    return 0


def _run(args: argparse.Namespace) -> int:
    from cli.devstack import run_dev_stack

    return run_dev_stack(get_settings())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="onboarding", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start the embedded dev stack").set_defaults(func=_run)
    sub.add_parser("worker", help="run a Temporal worker").set_defaults(func=_worker)
    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host")
    api.add_argument("--port", type=int)
    api.set_defaults(func=_api)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=_migrate)
    screen.add_parser(sub)
    reproject.add_parser(sub)
    history.add_parser(sub)
    eta.add_parser(sub)
    risk.add_parser(sub)
    whatif.add_parser(sub)
    dashboard.add_parser(sub)
    sanctions.add_parser(sub)
    preview.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        code: int = args.func(args)
    except ValidationError as e:  # settings refused (e.g. APP_ENV=production with dev secrets)
        reasons = "; ".join(str(err["msg"]) for err in e.errors())
        print(f"onboarding: configuration refused: {reasons}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())

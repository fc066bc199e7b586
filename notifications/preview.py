"""``onboarding notify-preview``: show what a milestone message looks like.

Renders the milestone's sample context so copy and layout changes can be
reviewed without a running case, a database or a mail provider.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from notifications.milestones import Milestone
from notifications.render import Branding, render, sample_context

FORMATS = ("html", "text", "sms")


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> argparse.ArgumentParser:
    """Register the ``notify-preview`` subcommand and return its parser.

    Sets ``func=run`` so ``cli.main`` can dispatch with ``args.func(args)``.
    """
    parser = subparsers.add_parser(
        "notify-preview",
        help="print a notification rendered with sample data",
        description="Render a milestone notification with realistic sample data.",
    )
    parser.add_argument(
        "milestone",
        choices=[m.value for m in Milestone],
        metavar="MILESTONE",
        help="one of: " + ", ".join(m.value for m in Milestone),
    )
    parser.add_argument(
        "--format",
        dest="format",
        choices=FORMATS,
        default="text",
        help="output format (default: text; staff notices have no sms)",
    )
    parser.add_argument("--brand-name", default=None, help="override the brand name")
    parser.add_argument("--brand-color", default=None, help="override the brand colour (#RRGGBB)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the rendered sample; returns a process exit code."""
    milestone = Milestone(args.milestone)
    overrides: dict[str, str] = {}
    if getattr(args, "brand_name", None):
        overrides["brand_name"] = args.brand_name
    if getattr(args, "brand_color", None):
        overrides["primary_color"] = args.brand_color
    try:
        branding = Branding(**overrides)
    except ValueError as exc:
        print(f"notify-preview: invalid branding: {exc}", file=sys.stderr)
        return 2
    message = render(milestone, sample_context(milestone), branding)
    fmt = getattr(args, "format", "text")
    if fmt == "html":
        print(message.html)
    elif fmt == "sms":
        if message.sms is None:
            print(
                f"notify-preview: {milestone.value} is a staff notice and has no SMS",
                file=sys.stderr,
            )
            return 2
        print(message.sms)
    else:
        print(f"Subject: {message.subject}\n")
        print(message.text, end="")
    return 0

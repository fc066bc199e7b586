"""Client and staff notifications: milestones, validated contexts, templates.

The outbox and delivery activities build on these; nothing in this package
talks to the network.
"""

from notifications.contexts import (
    CONTEXT_MODELS,
    MessageContext,
    NotificationContext,
    context_model,
)
from notifications.milestones import (
    CLIENT_MESSAGES,
    CLIENT_MILESTONES,
    GENERIC_MILESTONES,
    STAFF_NOTICES,
    Milestone,
)
from notifications.render import (
    SMS_MAX_CHARS,
    Branding,
    MessageTooLongError,
    RenderedMessage,
    render,
    sample_context,
)

__all__ = [
    "CLIENT_MESSAGES",
    "CLIENT_MILESTONES",
    "CONTEXT_MODELS",
    "GENERIC_MILESTONES",
    "SMS_MAX_CHARS",
    "STAFF_NOTICES",
    "Branding",
    "MessageContext",
    "MessageTooLongError",
    "Milestone",
    "NotificationContext",
    "RenderedMessage",
    "context_model",
    "render",
    "sample_context",
]

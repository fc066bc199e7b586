"""Local HTTP stand-ins for third-party APIs (SendGrid, Twilio).

They are real HTTP servers on 127.0.0.1 so the official SDKs run unmodified
end to end; each validates the request shape the real API requires, answers
in the real API's shape, records what it received, and can be told to fail.
"""

from tests.standins._server import RecordedRequest, StandinServer
from tests.standins.sendgrid_standin import SendGridStandin, running_sendgrid_standin
from tests.standins.twilio_standin import TwilioStandin, running_twilio_standin

__all__ = [
    "RecordedRequest",
    "SendGridStandin",
    "StandinServer",
    "TwilioStandin",
    "running_sendgrid_standin",
    "running_twilio_standin",
]

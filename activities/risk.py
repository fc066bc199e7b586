"""Client risk scoring: a pure function, so the rules are easy to read, test and audit.

The score is additive: every factor adds points and names itself in ``factors``, so a reviewer
sees *why* a client is rated as it is, not only the rating.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas.client import ClientProfile
from schemas.compliance import RiskLevel
from schemas.enums import ClientType

MEDIUM_FROM = 35
HIGH_FROM = 65

POTENTIAL_MATCH_POINTS = 70
HIGH_RISK_COUNTRY_POINTS = 65
INCREASED_MONITORING_POINTS = 20
NEAR_MISS_FLOOR = 70.0
NEAR_MISS_POINTS = 10
CLIENT_TYPE_POINTS: dict[ClientType, int] = {
    ClientType.INDIVIDUAL: 5,
    ClientType.BUSINESS: 10,
    ClientType.ENTERPRISE: 15,
}
REQUIREMENT_POINTS: dict[str, tuple[int, str]] = {
    "aml_pep": (30, "declared politically exposed person (aml_pep)"),
    "mifid_ii": (5, "regulated investment services (mifid_ii)"),
    "fatca": (3, "US tax reporting applies (fatca)"),
}
OTHER_REQUIREMENT_POINTS = 2
SCREENING_DECISIONS = ("clear", "potential_match")


def risk_level_for(score: int) -> RiskLevel:
    """Map a 0-100 score to a level: low < 35 <= medium < 65 <= high."""
    if score >= HIGH_FROM:
        return RiskLevel.HIGH
    if score >= MEDIUM_FROM:
        return RiskLevel.MEDIUM
    return RiskLevel.LOW


def assess_risk(
    *,
    client: ClientProfile,
    screening_decision: str,
    screening_score: float,
    high_risk_countries: Iterable[str],
    increased_monitoring_countries: Iterable[str],
) -> tuple[RiskLevel, int, list[str]]:
    """Score a client's onboarding risk from 0 to 100 and say which factors drove it.

    Points (summed, then capped at 100):

    * potential sanctions/PEP match: +70. Dominant: the level is always ``high``.
    * FATF high-risk country (``high_risk_countries``): +65. Always ``high``, even when the
      screening is clear.
    * FATF increased-monitoring country: +20.
    * client type: individual +5, business +10, enterprise +15 (more ownership layers to
      look through).
    * declared regulatory requirements: ``aml_pep`` +30 (a PEP alone reaches ``medium``),
      ``mifid_ii`` +5, ``fatca`` +3, any other code +2.
    * near miss: a ``clear`` screening whose best score is 70 or more (but below the match
      threshold): +10.

    Levels: ``low`` below 35, ``medium`` from 35 to 64, ``high`` from 65.

    Returns ``(level, score, factors)``; ``factors`` are human-readable, in the order above.
    Raises ``ValueError`` for an unknown screening decision, so a new decision value can never
    silently count as clear.
    """
    if screening_decision not in SCREENING_DECISIONS:
        raise ValueError(f"unknown screening decision {screening_decision!r}")
    high_risk = {c.strip().upper() for c in high_risk_countries}
    monitored = {c.strip().upper() for c in increased_monitoring_countries}
    country = client.country.upper()

    score = 0
    factors: list[str] = []
    dominant = False

    if screening_decision == "potential_match":
        score += POTENTIAL_MATCH_POINTS
        factors.append(f"potential sanctions/PEP list match (score {screening_score:.1f})")
        dominant = True

    if country in high_risk:
        score += HIGH_RISK_COUNTRY_POINTS
        factors.append(f"FATF high-risk country {country}")
        dominant = True
    elif country in monitored:
        score += INCREASED_MONITORING_POINTS
        factors.append(f"FATF increased-monitoring country {country}")

    score += CLIENT_TYPE_POINTS[client.client_type]
    factors.append(f"client type {client.client_type.value}")

    for code in client.regulatory_requirements:
        points, label = REQUIREMENT_POINTS.get(
            code, (OTHER_REQUIREMENT_POINTS, f"regulatory requirement {code}")
        )
        score += points
        factors.append(label)

    if screening_decision == "clear" and screening_score >= NEAR_MISS_FLOOR:
        score += NEAR_MISS_POINTS
        factors.append(f"near-miss screening score {screening_score:.1f}")

    score = min(100, score)
    if dominant:
        score = max(score, HIGH_FROM)
    return risk_level_for(score), score, factors

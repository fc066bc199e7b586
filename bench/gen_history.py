"""Simulated case history for client onboarding: what the ETA model and breach prediction learn
from until real history has piled up, and what their bench measures.

    .venv/bin/python -m bench.gen_history --cases 20000 --seed 7 OUT.csv
    .venv/bin/python bench/gen_history.py --cases 20000 --seed 7 OUT.csv   (the same)

Writes the history CSV of ``schemas.history`` (one row per stage visit). ``generate(n, seed)``
returns the same rows as ``StageInterval``s; the same seed gives the same history.

The world it simulates (``client_onboarding`` as shipped; SLA budgets are read from the case
type, 24/7 clocks as the case type has no calendar; staff work UK office hours):

- **Arrivals** ~60 cases a calendar day on average, mostly on weekdays in office hours (some
  evenings and weekends through the portal), with a yearly swell, noisy weeks, month-end
  peaks and quiet bank holidays.
- **Segments** individual 55% / business 35% / enterprise 10%; premium 12/22/55% of them;
  25% international (IE, DE, FR, US, ...); ``fatca`` (most US clients), ``mifid_ii`` (more for
  businesses), ``aml_pep`` (rare); documents already submitted at creation for ~30%.
- **Stages** in the case type's order: acknowledgement (automatic), document_collection (the
  client's own pace, slower for businesses and abroad, uploads when people are awake or, for
  companies, in office hours; then verification, automatic for most individuals, else by the
  onboarding team in office hours), compliance_review (straight-through in minutes for a
  clear, domestic, requirement-free, non-enterprise client; otherwise a FIFO queue at a desk
  of ``COMPLIANCE_REVIEWERS`` working office hours, with work per case growing with EDD,
  each requirement, a screening match and a second approval: waits grow with load),
  security_review (enterprise only), account_setup (provisioning, plus assigning an account
  manager in office hours for premium), final_review (office hours), welcome.
- **Send-backs**: some compliance reviews send the case back to document_collection (the
  compliance interval ends ``sent_back``, the client uploads again, compliance queues again);
  a few final reviews do too (then every stage from document_collection runs again).
- **Endings**: ~2.5% withdraw during document collection (``cancelled``), ~1.5% are rejected in
  compliance (the case resolves there); everyone else reaches welcome.
- **Breaches**: ``breached`` is true exactly when a visit lasted longer than its stage's SLA.

Nothing here is tuned to what the models score: the medians and spreads are plausible
operating figures, and the only calibration is the overall median duration (~2.3 days, the
reference).
"""

from __future__ import annotations

import argparse
import functools
import heapq
import math
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from analytics.worktime import WorkIndex  # noqa: E402
from playbooks.calendars import load_calendars  # noqa: E402
from playbooks.registry import DEFAULT_FOLDER, CaseTypeRegistry  # noqa: E402
from schemas.history import StageInterval, write_csv  # noqa: E402

CASE_TYPE = "client_onboarding"
START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday
CASES_PER_DAY = 60.0
COMPLIANCE_REVIEWERS = 19
HOUR = 3600.0

CLIENT_TYPES = (("individual", 0.55), ("business", 0.35), ("enterprise", 0.10))
PREMIUM = {"individual": 0.12, "business": 0.22, "enterprise": 0.55}
DOCS_AT_CREATION = {"individual": 0.34, "business": 0.28, "enterprise": 0.22}
INTERNATIONAL = 0.25
ABROAD = (
    ("IE", 14), ("DE", 12), ("FR", 12), ("US", 12), ("NL", 10), ("ES", 7), ("IT", 6),
    ("CH", 6), ("SG", 5), ("AE", 5), ("HK", 4), ("IN", 4), ("NG", 2), ("BR", 2),
)  # fmt: skip
MIFID = {"individual": 0.05, "business": 0.15, "enterprise": 0.30}
WEEKDAY_WEIGHT = (1.18, 1.12, 1.08, 1.06, 0.98, 0.36, 0.22)
# local hour of creation on a working day / on a weekend or holiday (relative weights)
HOURS_WORKDAY = (1, 1, 1, 1, 1, 2, 4, 8, 16, 26, 30, 30, 26, 28, 30, 28, 24, 18, 10, 8, 7, 6, 4, 2)
HOURS_OFFDAY = (1, 1, 1, 1, 1, 1, 2, 4, 7, 10, 12, 12, 12, 12, 11, 11, 10, 10, 10, 10, 9, 7, 4, 2)


@functools.cache
def budgets() -> dict[str, float]:
    """SLA budget (seconds) of each stage of the shipped case type (stages without: absent)."""
    case_type = CaseTypeRegistry.load().get(CASE_TYPE)
    return {s.key: s.sla.total_seconds() for s in case_type.stages if s.sla is not None}


@functools.cache
def office() -> WorkIndex:
    calendars, _ = load_calendars([DEFAULT_FOLDER])
    return WorkIndex(calendars["uk_business_hours"], START.year - 1, START.year + 3)


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


@dataclass
class Case:
    ref: str
    rng: random.Random
    created: float
    client_type: str
    tier: str
    country: str
    needs: tuple[str, ...]
    docs_at_creation: bool
    # hidden: what the creation facts do not show
    responsiveness: float  # multiplies the client's delays
    screening_match: bool
    high_risk: bool
    complex_ownership: bool
    visits: list[tuple[str, float, float, str]] = field(default_factory=list)
    compliance_visits: int = 0
    reuploaded: bool = False

    @property
    def international(self) -> bool:
        return self.country != "GB"

    def visit(self, stage: str, entered: float, exited: float, outcome: str = "completed") -> float:
        self.visits.append((stage, entered, exited, outcome))
        return exited


# ----------------------------------------------------------------------------- arrivals
def arrival_times(n: int, rng: random.Random) -> list[float]:
    """Creation instants (UTC epoch seconds), day by day, until ``n`` cases have opened."""
    cal = office()
    zone = cal.zone
    out: list[float] = []
    week_noise = 1.0
    day = 0
    while len(out) < n:
        at = START + timedelta(days=day)
        local_day = at.astimezone(zone).date()
        if local_day.weekday() == 0 or day == 0:
            week_noise = lognormal(rng, 1.0, 0.15)
        season = 1.0 + 0.12 * math.sin(2 * math.pi * (day + 40) / 365.25)
        month_end = 1.15 if local_day.day >= 26 else 1.0
        workday = cal.worked_one(at.timestamp() + 86400) > cal.worked_one(at.timestamp())
        weight = WEEKDAY_WEIGHT[local_day.weekday()] if workday else 0.25
        expected = CASES_PER_DAY * weight * season * week_noise * month_end
        hours = HOURS_WORKDAY if workday else HOURS_OFFDAY
        for _ in range(_poisson(rng, expected)):
            hour = rng.choices(range(24), weights=hours)[0]
            local = datetime(local_day.year, local_day.month, local_day.day, tzinfo=zone)
            when = local + timedelta(hours=hour, seconds=rng.uniform(0, 3600))
            out.append(round(when.timestamp()))
        day += 1
    out.sort()
    return out[:n]


def _poisson(rng: random.Random, lam: float) -> int:
    # normal approximation is fine at these rates (tens a day); never negative
    return max(0, round(rng.gauss(lam, math.sqrt(lam))))


def new_case(seed: int, i: int, created: float) -> Case:
    rng = random.Random(f"{seed}:{i}")
    client_type = rng.choices([c for c, _ in CLIENT_TYPES], weights=[w for _, w in CLIENT_TYPES])[0]
    tier = "premium" if rng.random() < PREMIUM[client_type] else "standard"
    country = "GB"
    if rng.random() < INTERNATIONAL:
        country = rng.choices([c for c, _ in ABROAD], weights=[w for _, w in ABROAD])[0]
    needs: list[str] = []
    if rng.random() < (0.85 if country == "US" else 0.03):
        needs.append("fatca")
    if rng.random() < MIFID[client_type]:
        needs.append("mifid_ii")
    if rng.random() < (0.05 if tier == "premium" else 0.015):
        needs.append("aml_pep")
    docs = rng.random() < DOCS_AT_CREATION[client_type] + (0.08 if tier == "premium" else 0.0)
    return Case(
        ref=f"SIM{seed}-{i:06d}",
        rng=rng,
        created=created,
        client_type=client_type,
        tier=tier,
        country=country,
        needs=tuple(needs),
        docs_at_creation=docs,
        responsiveness=lognormal(rng, 1.0, 0.45),
        screening_match=rng.random() < 0.025,
        high_risk=rng.random() < (0.10 if country in ("AE", "NG", "HK", "BR") else 0.04),
        complex_ownership=client_type != "individual" and rng.random() < 0.35,
    )


# ----------------------------------------------------------------------------- stages
def client_ready(case: Case, start: float, median_h: float) -> float:
    """When the client has uploaded what is asked, starting at ``start``."""
    rng = case.rng
    delay = lognormal(rng, median_h * HOUR, 0.85) * case.responsiveness
    at = start + delay
    if case.client_type == "individual":
        local = datetime.fromtimestamp(at, office().zone)
        if local.hour < 7 or local.hour >= 23:  # asleep: next morning, on the way to work
            morning = local.replace(hour=7, minute=0, second=0) + timedelta(
                days=1 if local.hour >= 23 else 0
            )
            at = morning.timestamp() + rng.expovariate(1 / (1.5 * HOUR))
    else:  # companies upload in office hours
        at = office().add_one(at, rng.uniform(0, 1.5 * HOUR)) if _closed(at) else at
    return at


def _closed(t: float) -> bool:
    cal = office()
    return cal.worked_one(t + 1) == cal.worked_one(t)


def document_collection(case: Case, entered: float, *, again: bool = False) -> float | None:
    """The exit instant, or None when the client withdrew (the case ends here)."""
    rng = case.rng
    if not again and rng.random() < 0.025:
        gone = entered + lognormal(rng, 5 * 24 * HOUR, 0.6)
        case.visit("document_collection", entered, gone, "cancelled")
        return None
    median_h = {"individual": 22.0, "business": 30.0, "enterprise": 42.0}[case.client_type]
    median_h *= 1.35 if case.international else 1.0
    median_h *= 0.8 if case.tier == "premium" else 1.0
    if again:
        ready = client_ready(case, entered, 14.0)
    elif case.docs_at_creation:
        ready = entered + rng.uniform(30, 300)
        if rng.random() < 0.2:  # something expired or missing: asked again
            ready = client_ready(case, ready, median_h * 0.6)
            case.reuploaded = True
    else:
        ready = client_ready(case, entered, median_h)
    if case.client_type == "individual" and rng.random() < 0.5:
        done = ready + rng.uniform(60, 600)  # verified automatically
    else:
        work = lognormal(rng, 2.0 * HOUR, 0.8) * (1.6 if case.client_type == "enterprise" else 1)
        done = office().add_one(ready, work)
    return case.visit("document_collection", entered, done)


class ComplianceDesk:
    """``COMPLIANCE_REVIEWERS`` people, first come first served, in office hours only."""

    def __init__(self, reviewers: int) -> None:
        self.free = [0.0] * reviewers  # working-time instant each reviewer is free again

    def serve(self, arrival: float, work: float) -> float:
        cal = office()
        free = heapq.heappop(self.free)
        start = max(cal.worked_one(arrival), free)
        end = start + work
        heapq.heappush(self.free, end)
        return cal.instant_one(end)


def compliance_work(case: Case) -> float:
    rng = case.rng
    work = lognormal(rng, 1.0 * HOUR, 0.5)
    if case.international or case.high_risk:
        work += lognormal(rng, 1.5 * HOUR, 0.5)  # enhanced due diligence
    for _ in case.needs:
        work += lognormal(rng, 0.7 * HOUR, 0.5)
    if case.screening_match:
        work += lognormal(rng, 2.5 * HOUR, 0.5)
    if case.complex_ownership:
        work += lognormal(rng, 1.0 * HOUR, 0.6)  # tracing the beneficial owners
    if case.client_type == "enterprise" or case.high_risk:
        work += lognormal(rng, 0.8 * HOUR, 0.6)  # the second approval
    return work * (0.5 if case.compliance_visits > 1 else 1.0)


def straight_through(case: Case) -> bool:
    return not (
        case.international
        or case.needs
        or case.screening_match
        or case.high_risk
        or case.complex_ownership
        or case.client_type == "enterprise"
    )


def after_compliance(case: Case, entered: float) -> float:
    """Security review (enterprise), account setup, final review, welcome; the exit of the
    last one, or -entry of document_collection after a final-review send-back (negative)."""
    rng, cal = case.rng, office()
    t = entered
    again = case.compliance_visits > 1
    if case.client_type == "enterprise":
        work = lognormal(rng, 4.5 * HOUR, 0.6) * (0.3 if again else 1.0)
        t = case.visit("security_review", t, cal.add_one(t, work))
    setup_start = t
    done = t + rng.uniform(120, 480) * (0.5 if again else 1.0)
    if not again and rng.random() < 0.03:  # the core banking system said no; retried later
        done += rng.uniform(1, 3) * HOUR
    if case.tier == "premium" and not again:
        done = max(done, cal.add_one(setup_start, lognormal(rng, 1.2 * HOUR, 0.8)))
    t = case.visit("account_setup", setup_start, done)
    review_start = t
    t = cal.add_one(t, lognormal(rng, 1.2 * HOUR, 0.9))
    if not again and rng.random() < 0.02:
        case.visit("final_review", review_start, t, "sent_back")
        return -t
    t = case.visit("final_review", review_start, t)
    return case.visit("welcome", t, t + rng.uniform(5, 60))


# ----------------------------------------------------------------------------- the run
def simulate(n_cases: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    cases = [new_case(seed, i, t) for i, t in enumerate(arrival_times(n_cases, rng))]
    desk = ComplianceDesk(COMPLIANCE_REVIEWERS)
    queue: list[tuple[float, int]] = []  # (arrival at compliance, case index)

    def to_documents(k: int, entered: float, again: bool) -> None:
        done = document_collection(cases[k], entered, again=again)
        if done is not None:
            heapq.heappush(queue, (done, k))

    for k, case in enumerate(cases):
        ack = case.visit("acknowledgement", case.created, case.created + case.rng.uniform(5, 90))
        to_documents(k, ack, False)
    while queue:  # in order of arrival at compliance: first come, first served
        arrival, k = heapq.heappop(queue)
        case, rng = cases[k], cases[k].rng
        case.compliance_visits += 1
        if case.compliance_visits == 1 and straight_through(case):
            exit_at = case.visit("compliance_review", arrival, arrival + rng.uniform(30, 300))
        else:
            work = compliance_work(case)
            p_back = 0.02
            if case.compliance_visits == 1:
                p_back = (
                    0.05 + 0.05 * case.international + 0.03 * (case.client_type != "individual")
                )
                p_back += 0.05 * case.reuploaded
            if rng.random() < p_back:
                back = desk.serve(arrival, work * rng.uniform(0.3, 0.8))
                case.visit("compliance_review", arrival, back, "sent_back")
                to_documents(k, back, True)
                continue
            exit_at = case.visit("compliance_review", arrival, desk.serve(arrival, work))
            if rng.random() < 0.015:
                continue  # rejected: the case resolves here
        end = after_compliance(case, exit_at)
        if end < 0:  # the final reviewer sent it back
            to_documents(k, -end, True)
    return cases


def intervals_of(case: Case) -> list[StageInterval]:
    limit = budgets()
    created = _time(case.created)
    out = []
    for stage, entered, exited, outcome in sorted(case.visits, key=lambda v: (v[1], v[2])):
        start, end = _time(entered), _time(exited)
        budget = limit.get(stage)
        out.append(
            StageInterval(
                case_ref=case.ref,
                case_type=CASE_TYPE,
                client_type=case.client_type,
                tier=case.tier,
                country=case.country,
                service_requirements=case.needs,
                documents_submitted_at_creation=case.docs_at_creation,
                created_at=created,
                stage=stage,
                entered_at=start,
                exited_at=end,
                outcome=outcome,
                breached=budget is not None and (end - start).total_seconds() > budget,
            )
        )
    return out


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(round(epoch), UTC)


def generate(n_cases: int, seed: int) -> list[StageInterval]:
    """``n_cases`` finished client onboarding cases as stage intervals, ordered by case and
    time. Deterministic: the same arguments give the same intervals."""
    return [iv for case in simulate(n_cases, seed) for iv in intervals_of(case)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("out", metavar="OUT.csv", help="where to write the history ('-': stdout)")
    parser.add_argument("--cases", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    intervals = generate(args.cases, args.seed)
    if args.out == "-":
        write_csv(sys.stdout, intervals)
    else:
        with open(args.out, "w", encoding="utf-8", newline="") as f:
            write_csv(f, intervals)
    print(
        f"{args.cases} cases, {len(intervals)} stage intervals in "
        f"{time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

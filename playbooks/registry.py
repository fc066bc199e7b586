"""Case types on disk: load every ``*.yaml`` under one or more folders, validate, cross-check.

I/O, so never imported by workflow code: the API and the worker load a registry at start, and a
case pins the validated ``CaseType`` it opens with (it travels in the workflow input).

Besides the pydantic model (``schemas.casetype.CaseType``) the registry checks what one file
cannot know on its own, and names the file and the path of every problem:

- automation ``action`` / ``compensate`` are names the worker knows (``AUTOMATIONS``);
- subprocess ``case_type`` exists, is another type, and the subprocess graph has no cycle;
  its ``data`` maps onto the child's declared fields and covers the child's required ones;
- every condition path (``when``, ``required_when``, ``auto_approve_when``) and every input
  path starts with ``client.<profile field>``, ``international``, a declared field, or the
  ``output`` of an automation/subprocess in an EARLIER element (same or earlier stage);
- documents checklist keys are client types or ``default``;
- notifications: ``case_update`` carries a ``body``; ``to: staff`` names a role;
- a case type ``name`` appears once across all files;
- optionally, every role is one the caller knows (``known_roles``) and every milestone too
  (``known_milestones``).

``refresh()`` re-reads files whose mtime changed; a change that no longer validates is logged
and the last good version stays in service.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from playbooks.calendars import SUFFIX as CALENDAR_SUFFIX
from playbooks.calendars import load_calendars, pin
from schemas.calendar import CalendarDef, PinnedCalendar
from schemas.casetype import (
    ApprovalElement,
    AutomationElement,
    CaseType,
    CaseTypeSummary,
    Condition,
    DocumentsElement,
    NotificationElement,
    SubprocessElement,
    TaskElement,
)
from schemas.client import ClientProfile
from schemas.contracts import AUTOMATIONS
from schemas.enums import ClientType

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FOLDER = Path(__file__).resolve().parent / "case_types"
CHECKLIST_KEYS = frozenset({t.value for t in ClientType} | {"default"})
CLIENT_FIELDS = frozenset(ClientProfile.model_fields)
MILESTONES_NEEDING_BODY = frozenset({"case_update"})

PathLike = str | os.PathLike[str]


class CaseTypeError(ValueError):
    """One or more case type files are invalid. ``problems`` lists every one, each naming the
    file and the path inside it."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in case types:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


class UnknownCaseType(LookupError):
    """No such (startable) case type. The message names the types that can be started."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        listed = ", ".join(known) if known else "none"
        super().__init__(f"unknown case type {name!r}; known case types: {listed}")

    def __str__(self) -> str:
        return str(self.args[0])


def folders_from_setting(extra: str | Iterable[PathLike] | None = None) -> list[Path]:
    """The default folder plus extra ones from a setting: a list of paths, or one string with
    paths separated by ``,`` or ``os.pathsep``. Relative paths are relative to the repo root."""
    if extra is None:
        items: list[PathLike] = []
    elif isinstance(extra, str):
        items = [p.strip() for p in extra.replace(os.pathsep, ",").split(",") if p.strip()]
    else:
        items = list(extra)
    folders = [DEFAULT_FOLDER]
    for item in items:
        path = _resolve(item)
        if path not in folders:
            folders.append(path)
    return folders


def _resolve(folder: PathLike) -> Path:
    path = Path(folder).expanduser()
    return (path if path.is_absolute() else REPO_ROOT / path).resolve()


# ----------------------------------------------------------------------------- per file
@dataclass(frozen=True)
class _Entry:
    path: Path
    mtime_ns: int
    case_type: CaseType


def _label(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top)"


def _parse_file(path: Path) -> tuple[CaseType | None, list[str]]:
    """YAML + model + the checks one file can make on its own."""
    label = _label(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{label}: cannot read: {exc}"]
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" (line {mark.line + 1}, column {mark.column + 1})"
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [f"{label}: not valid YAML{where}: {problem}"]
    if not isinstance(raw, dict):
        return None, [f"{label}: a case type file is a mapping (name, version, stages, …)"]
    try:
        case_type = CaseType.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = _named_loc(raw, err["loc"])
            problems.append(f"{label}: {loc}: {err['msg']}")
        return None, problems
    return case_type, [f"{label}: {p}" for p in _check_one(case_type)]


def _named_loc(raw: Mapping[str, Any], loc: tuple[Any, ...]) -> str:
    """Pydantic's loc, plus the element key when the error is inside an element."""
    text = _loc(loc)
    if len(loc) >= 4 and loc[0] == "stages" and loc[2] == "elements":
        try:
            key = raw["stages"][loc[1]]["elements"][loc[3]].get("key")
        except (KeyError, IndexError, TypeError, AttributeError):
            key = None
        if isinstance(key, str):
            text += f" (element {key!r})"
    return text


def _conditions(cond: Condition | None) -> Iterator[str]:
    """Every field path a condition reads."""
    if cond is None:
        return
    if cond.field is not None:
        yield cond.field
    for child in (*(cond.all_ or []), *(cond.any_ or [])):
        yield from _conditions(child)
    yield from _conditions(cond.not_)


DECISION_PARTS = ("outcome", "by", "note", "reason_code")
CASE_FACTS = ("human_steps", "ever_paused", "reopened")  # auto_complete rules only
DOCUMENT_FACTS = ("accepted", "accepted_titles", "machine_verified", "waived")


def _path_problem(
    path: str,
    case_type: CaseType,
    outputs: Mapping[str, str],
    decided: Iterable[str] = (),
    *,
    case_facts: bool = False,
    documents_seen: bool = False,
) -> str | None:
    root, _, rest = path.partition(".")
    if root == "case" and case_facts:
        if rest not in CASE_FACTS:
            return f"{path!r}: the case facts are case.{', case.'.join(CASE_FACTS)}"
        return None
    if root == "documents" and documents_seen:
        if rest not in DOCUMENT_FACTS:
            return f"{path!r}: documents has {', '.join(DOCUMENT_FACTS)}"
        return None
    if root == "decisions":
        key, _, part = rest.partition(".")
        if key not in decided:
            earlier = _list(decided) or "none"
            return (
                f"{path!r}: decisions.<key> names an earlier approval or a task with outcomes "
                f"(earlier: {earlier})"
            )
        if part not in DECISION_PARTS:
            return f"{path!r}: a decision has {', '.join(DECISION_PARTS)}"
        return None
    if root == "client":
        first = rest.partition(".")[0]
        if not first:
            return f"{path!r}: name a client profile field (client.<field>)"
        if first not in CLIENT_FIELDS:
            return f"{path!r}: the client profile has no field {first!r} ({_list(CLIENT_FIELDS)})"
        return None
    if root == "international":
        return f"{path!r}: international is a boolean, it has no sub-fields" if rest else None
    if root in case_type.fields:
        return f"{path!r}: field {root!r} is a plain value, it has no sub-fields" if rest else None
    if root in outputs:
        return None
    declared = _list(case_type.fields) if case_type.fields else "none"
    earlier = _list(outputs) if outputs else "none"
    return (
        f"{path!r} is not client.<field>, international, a declared field or the output of an "
        f"earlier automation/subprocess (declared fields: {declared}; earlier outputs: {earlier})"
    )


def _list(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))


def _check_one(case_type: CaseType) -> list[str]:
    problems: list[str] = []
    outputs: dict[str, str] = {}  # output name -> element key that writes it
    decided: list[str] = []  # approvals and tasks with outcomes met so far
    documents_seen = False  # a documents element writes documents.* once verified or waived
    for si, stage in enumerate(case_type.stages):
        for p in _conditions(stage.when):
            problem = _path_problem(p, case_type, outputs, decided, documents_seen=documents_seen)
            if problem:
                problems.append(f"stages[{si}] (stage {stage.key!r}).when: {problem}")
        documents_seen = documents_seen or any(
            isinstance(e, DocumentsElement) for e in stage.elements
        )
        for ei, element in enumerate(stage.elements):
            where = f"stages[{si}].elements[{ei}] (element {element.key!r})"

            def check(
                attr: str,
                paths: Iterable[str],
                *,
                _where: str = where,
                _seen: bool = documents_seen,
            ) -> None:
                for p in paths:
                    problem = _path_problem(p, case_type, outputs, decided, documents_seen=_seen)
                    if problem:
                        problems.append(f"{_where}.{attr}: {problem}")

            check("when", _conditions(element.when))
            if isinstance(element, ApprovalElement):
                for ri, rule in enumerate(element.required_when):
                    check(f"required_when[{ri}].when", _conditions(rule.when))
                check("auto_approve_when", _conditions(element.auto_approve_when))
            if isinstance(element, AutomationElement):
                for name, attr in (("action", element.action), ("compensate", element.compensate)):
                    if attr is not None and attr not in AUTOMATIONS:
                        problems.append(
                            f"{where}.{name}: unknown automation {attr!r} "
                            f"(known: {_list(AUTOMATIONS)})"
                        )
                for arg, source in element.input.items():
                    if not source.startswith("="):
                        check(f"input.{arg}", [source])
            if isinstance(element, SubprocessElement):
                for child_field, source in element.data.items():
                    if not source.startswith("="):
                        check(f"data.{child_field}", [source])
            if isinstance(element, DocumentsElement):
                for client_type in element.checklists:
                    if client_type not in CHECKLIST_KEYS:
                        problems.append(
                            f"{where}.checklists: {client_type!r} is not a client type or "
                            f"'default' ({_list(CHECKLIST_KEYS)})"
                        )
            if isinstance(element, NotificationElement):
                if element.milestone in MILESTONES_NEEDING_BODY and not element.body:
                    problems.append(f"{where}.body: milestone {element.milestone} needs a body")
                if element.to == "staff" and not element.role:
                    problems.append(f"{where}.role: a notification to staff names a role")
                if element.to == "client" and element.role:
                    problems.append(f"{where}.role: role is for to: staff only")
            if isinstance(element, TaskElement) and element.escalate_to and element.due is None:
                problems.append(f"{where}.escalate_to: escalation when overdue needs a due time")
            output = getattr(element, "output", None)
            if output is not None:
                if output in case_type.fields or output in ("client", "international", "case"):
                    problems.append(
                        f"{where}.output: {output!r} would hide a declared field or a reserved name"
                    )
                outputs.setdefault(output, element.key)
            if isinstance(element, ApprovalElement) or (
                isinstance(element, TaskElement) and element.outcomes
            ):
                decided.append(element.key)
        for ri, auto in enumerate(stage.auto_complete):
            for p in _conditions(auto.when):
                problem = _path_problem(
                    p, case_type, outputs, decided, case_facts=True, documents_seen=documents_seen
                )
                if problem:
                    problems.append(
                        f"stages[{si}] (stage {stage.key!r}).auto_complete[{ri}] "
                        f"(rule {auto.name!r}).when: {problem}"
                    )
    return problems


# Roles that receive staff notices (SLA warnings and escalations to stage owners and targets,
# task reminders and overdue escalations, staff notifications): each needs a staff address.
_NOTIFIED = (".owner_role", ".target", ".assignee_role", ".escalate_to")


def _notified_roles_where(case_type: CaseType) -> Iterator[tuple[str, str]]:
    for where, role in _roles_where(case_type):
        if where.endswith(_NOTIFIED):
            yield where, role
    for si, stage in enumerate(case_type.stages):
        for ei, el in enumerate(stage.elements):
            if isinstance(el, NotificationElement) and el.role:
                yield f"stages[{si}].elements[{ei}] (element {el.key!r}).role", el.role


def _roles_where(case_type: CaseType) -> Iterator[tuple[str, str]]:
    """(path, role) for every role the case type names."""
    for si, stage in enumerate(case_type.stages):
        base = f"stages[{si}] (stage {stage.key!r})"
        yield f"{base}.owner_role", stage.owner_role
        for role in stage.access:
            yield f"{base}.access", role
        for li, level in enumerate(stage.escalations):
            yield f"{base}.escalations[{li}].target", level.target
        for ei, el in enumerate(stage.elements):
            where = f"stages[{si}].elements[{ei}] (element {el.key!r})"
            for attr in ("assignee_role", "escalate_to", "role"):
                value = getattr(el, attr, None)
                if value:
                    yield f"{where}.{attr}", value
            for role in getattr(el, "approver_roles", []):
                yield f"{where}.approver_roles", role


# ----------------------------------------------------------------------------- across files
def _check_all(
    entries: Mapping[Path, _Entry],
    known_roles: set[str] | None,
    known_milestones: set[str] | None,
    staff_roles: set[str] | None = None,
) -> list[str]:
    problems: list[str] = []
    by_name: dict[str, list[Path]] = {}
    for path, entry in entries.items():
        by_name.setdefault(entry.case_type.name, []).append(path)
    for name, paths in sorted(by_name.items()):
        if len(paths) > 1:
            files = ", ".join(_label(p) for p in sorted(paths))
            problems.append(f"{files}: case type name {name!r} is declared in more than one file")
    types = {e.case_type.name: e.case_type for e in entries.values()}
    graph: dict[str, set[str]] = {}
    for path, entry in sorted(entries.items()):
        ct, label = entry.case_type, _label(path)
        graph[ct.name] = set()
        for role, milestones in ct.contact_roles.items():
            for milestone in milestones:
                if known_milestones is not None and milestone not in known_milestones:
                    problems.append(
                        f"{label}: contact_roles.{role}: unknown milestone {milestone!r}"
                    )
        for si, stage in enumerate(ct.stages):
            for ei, el in enumerate(stage.elements):
                where = f"{label}: stages[{si}].elements[{ei}] (element {el.key!r})"
                if (
                    isinstance(el, NotificationElement)
                    and known_milestones is not None
                    and el.milestone not in known_milestones
                ):
                    problems.append(
                        f"{where}.milestone: unknown milestone {el.milestone!r} "
                        f"(known: {_list(known_milestones)})"
                    )
                for attr in ("notify_before", "notify_after", "notify_received", "notify_needed"):
                    value = getattr(el, attr, None)
                    if value and known_milestones is not None and value not in known_milestones:
                        problems.append(f"{where}.{attr}: unknown milestone {value!r}")
                if not isinstance(el, SubprocessElement):
                    continue
                if el.case_type == ct.name:
                    problems.append(f"{where}.case_type: a case type cannot start itself")
                    continue
                child = types.get(el.case_type)
                if child is None:
                    problems.append(
                        f"{where}.case_type: unknown case type {el.case_type!r} "
                        f"(known: {_list(types) or 'none'})"
                    )
                    continue
                graph[ct.name].add(child.name)
                for child_field in el.data:
                    if child_field not in child.fields:
                        problems.append(
                            f"{where}.data.{child_field}: {child.name} declares no such field "
                            f"({_list(child.fields) or 'no fields'})"
                        )
                missing = [n for n, f in child.fields.items() if f.required and n not in el.data]
                if missing:
                    problems.append(
                        f"{where}.data: {child.name} requires {_list(missing)}; map them in data"
                    )
        if staff_roles is not None:
            unaddressed: dict[str, list[str]] = {}
            for where, role in _notified_roles_where(ct):
                unknown_anyway = known_roles is not None and role not in known_roles
                if role not in staff_roles and not unknown_anyway:  # reported once, below
                    unaddressed.setdefault(role, []).append(where)
            for role, wheres in sorted(unaddressed.items()):
                problems.append(
                    f"{label}: {', '.join(dict.fromkeys(wheres))}: role {role!r} gets staff "
                    f"notices but has no address in STAFF_DIRECTORY"
                )
        if known_roles is not None:
            unknown: dict[str, list[str]] = {}
            for where, role in _roles_where(ct):
                if role not in known_roles:
                    unknown.setdefault(role, []).append(where)
            for role, wheres in sorted(unknown.items()):
                problems.append(
                    f"{label}: {', '.join(wheres)}: unknown role {role!r} "
                    f"(known: {_list(known_roles)})"
                )
    problems.extend(_cycles(graph, {e.case_type.name: e.path for e in entries.values()}))
    return problems


def _cycles(graph: Mapping[str, set[str]], files: Mapping[str, Path]) -> list[str]:
    problems: list[str] = []
    seen: set[tuple[str, ...]] = set()
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :]
                pivot = cycle.index(min(cycle))
                canon = tuple(cycle[pivot:] + cycle[:pivot])
                if canon not in seen:
                    seen.add(canon)
                    chain = " -> ".join([*canon, canon[0]])
                    problems.append(f"{_label(files[canon[0]])}: subprocess cycle: {chain}")
            elif state.get(nxt) is None:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return problems


def _scan(folders: list[Path]) -> tuple[dict[Path, int], list[str]]:
    found: dict[Path, int] = {}
    problems: list[str] = []
    for folder in folders:
        if not folder.is_dir():
            problems.append(f"{_label(folder)}: case type folder does not exist")
            continue
        for path in sorted(folder.glob("*.yaml")):
            if path.is_file() and not path.name.endswith(CALENDAR_SUFFIX):
                found[path.resolve()] = path.stat().st_mtime_ns
    return found, problems


# ----------------------------------------------------------------------------- registry
class CaseTypeRegistry:
    """The validated case types, by name. Build with ``CaseTypeRegistry.load(...)``."""

    def __init__(
        self,
        folders: list[Path],
        entries: dict[Path, _Entry],
        known_roles: set[str] | None = None,
        known_milestones: set[str] | None = None,
        calendars: dict[str, CalendarDef] | None = None,
    ) -> None:
        self.folders = folders
        self.calendars: dict[str, CalendarDef] = dict(calendars or {})
        self.known_roles = known_roles
        self.known_milestones = known_milestones
        self._entries = entries
        self._mtimes = {p: e.mtime_ns for p, e in entries.items()}
        self._types = self._index(entries)

    @staticmethod
    def _index(entries: Mapping[Path, _Entry]) -> dict[str, CaseType]:
        return {e.case_type.name: e.case_type for e in entries.values()}

    @classmethod
    def load(
        cls,
        folders: PathLike | Iterable[PathLike] | None = None,
        known_roles: set[str] | None = None,
        known_milestones: set[str] | None = None,
        staff_roles: set[str] | None = None,
    ) -> CaseTypeRegistry:
        """Load every ``*.yaml`` under ``folders`` (default: ``playbooks/case_types``; relative
        paths are relative to the repo root). Raises ``CaseTypeError`` listing every problem."""
        if folders is None:
            resolved = [DEFAULT_FOLDER]
        elif isinstance(folders, str | os.PathLike):
            resolved = [_resolve(folders)]
        else:
            resolved = list(dict.fromkeys(_resolve(f) for f in folders))
        found, problems = _scan(resolved)
        entries: dict[Path, _Entry] = {}
        parsed: dict[Path, _Entry] = {}  # also the files with problems: list theirs all at once
        for path, mtime in found.items():
            case_type, file_problems = _parse_file(path)
            problems.extend(file_problems)
            if case_type is not None:
                parsed[path] = _Entry(path, mtime, case_type)
                if not file_problems:
                    entries[path] = parsed[path]
        problems.extend(_check_all(parsed, known_roles, known_milestones, staff_roles))
        calendars, calendar_problems = load_calendars(resolved)
        problems.extend(calendar_problems)
        problems.extend(_check_calendars(parsed, calendars))
        if problems:
            raise CaseTypeError(problems)
        return cls(resolved, entries, known_roles, known_milestones, calendars)

    # -- lookups
    def get(self, name: str, *, startable_only: bool = False) -> CaseType:
        """The case type called ``name``. ``startable_only``: refuse types that run only as a
        subprocess (what ``POST /cases`` wants)."""
        case_type = self._types.get(name)
        if case_type is None or (startable_only and not case_type.startable):
            raise UnknownCaseType(name, self.startable_names())
        return case_type

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __len__(self) -> int:
        return len(self._types)

    def names(self) -> list[str]:
        return sorted(self._types)

    def startable_names(self) -> list[str]:
        return sorted(n for n, t in self._types.items() if t.startable)

    def summaries(self) -> list[CaseTypeSummary]:
        return [
            CaseTypeSummary(
                name=t.name,
                version=t.version,
                title=t.title,
                description=t.description,
                startable=t.startable,
                stages=[s.key for s in t.stages],
                fields=dict(t.fields),
            )
            for _, t in sorted(self._types.items())
        ]

    def path_of(self, name: str) -> Path:
        for entry in self._entries.values():
            if entry.case_type.name == name:
                return entry.path
        raise UnknownCaseType(name, self.startable_names())

    # -- reload
    def refresh(self) -> bool:
        """Re-read files added, changed (mtime) or removed since the last look. A file that no
        longer validates is logged and its last good version stays; returns True when the set
        of case types in service changed."""
        found, scan_problems = _scan(self.folders)
        for problem in scan_problems:
            log.error("case types: %s", problem)
        if found == self._mtimes:
            return False
        changed = {p for p, m in found.items() if self._mtimes.get(p) != m}
        self._mtimes = dict(found)  # a bad file is reported once, until it changes again
        candidate: dict[Path, _Entry] = {
            p: e for p, e in self._entries.items() if p in found and p not in changed
        }
        fresh: dict[Path, _Entry] = {}
        for path in sorted(changed):
            case_type, problems = _parse_file(path)
            if case_type is None or problems:
                for problem in problems:
                    log.error("case types: %s (keeping the last good version)", problem)
                if path in self._entries:
                    candidate[path] = self._entries[path]
                continue
            fresh[path] = _Entry(path, found[path], case_type)
        candidate.update(fresh)
        problems = _check_all(candidate, self.known_roles, self.known_milestones)
        problems += _check_calendars(candidate, self.calendars)  # calendars load at start
        if problems:
            for problem in problems:
                log.error("case types: %s (keeping the last good versions)", problem)
            # Fall back to the old version of every changed file, then to the old set entirely.
            for path in fresh:
                if path in self._entries:
                    candidate[path] = self._entries[path]
                else:
                    del candidate[path]
            if _check_all(candidate, self.known_roles, self.known_milestones):
                return False
        before = dict(self._types)
        self._entries = candidate
        self._types = self._index(candidate)
        if before != self._types:
            log.info("case types reloaded: %s", ", ".join(self.names()))
            return True
        return False

    def check_candidate(
        self,
        path: Path,
        *,
        staff_roles: set[str] | None = None,
        calendar_folders: Sequence[Path] = (),
    ) -> tuple[CaseType | None, dict[str, CalendarDef], list[str]]:
        """Validate one case type file (a draft) as this registry would load it next to the
        types in service: the file's own checks, then the cross-file checks with the draft in
        place of the type of the same name, then the calendars of this registry's folders plus
        ``calendar_folders``. Every problem is listed at once. The draft is returned as parsed
        (None if it does not parse): it is valid only when there are no problems."""
        from playbooks.calendars import load_calendars

        resolved = path.resolve()
        draft, problems = _parse_file(resolved)
        if draft is None:
            return None, {}, problems
        entries: dict[Path, _Entry] = {
            where: _Entry(where, 0, self.get(name))
            for name in self.names()
            if name != draft.name and (where := self.path_of(name)) is not None
        }
        entries[resolved] = _Entry(resolved, 0, draft)
        problems += _check_all(entries, self.known_roles, self.known_milestones, staff_roles)
        folders = list(
            dict.fromkeys([*self.folders, *(Path(f).resolve() for f in calendar_folders)])
        )
        calendars, calendar_problems = load_calendars(folders)
        problems += calendar_problems
        problems += _check_calendars(entries, calendars)
        return draft, calendars, problems

    @staticmethod
    def label(path: Path) -> str:
        """How problems name a file."""
        return _label(path.resolve())


__all__ = [
    "DEFAULT_FOLDER",
    "CaseTypeError",
    "CaseTypeRegistry",
    "UnknownCaseType",
    "folders_from_setting",
]


def _check_calendars(
    entries: Mapping[Path, _Entry], calendars: Mapping[str, CalendarDef]
) -> list[str]:
    """Every calendar a case type or stage names is declared (``*.calendar.yaml``)."""
    problems: list[str] = []
    known = ", ".join(sorted(calendars)) or "none"
    for entry in entries.values():
        ct = entry.case_type
        named = [("calendar", ct.calendar)] + [
            (f"stages[{i}] (stage {s.key!r}).calendar", s.calendar) for i, s in enumerate(ct.stages)
        ]
        for where, name in named:
            if name and name not in calendars:
                problems.append(
                    f"{_label(entry.path)}: {where}: unknown calendar {name!r} (known: {known})"
                )
    return problems


def pinned_calendars(
    registry: CaseTypeRegistry,
    case_types: Iterable[CaseType],
    now: datetime,
) -> dict[str, PinnedCalendar]:
    """The calendars the given case types (a case and its pinned subprocess types) count in,
    resolved around ``now`` for the workflow input."""
    names = {
        name
        for ct in case_types
        for name in (ct.calendar, *(s.calendar for s in ct.stages))
        if name
    }
    return {name: pin(registry.calendars[name], now) for name in sorted(names)}


def pinned_subprocess_types(
    registry: CaseTypeRegistry,
    case_type: CaseType,
    *,
    client: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, CaseType]:
    """The case types a new case may start as subprocesses (transitively), pinned with it.

    With the opening facts (``client`` profile and ``data``), a subprocess whose stage or
    element condition reads only those facts and does not hold is left out: a standard
    onboarding case then does not carry the security review type in its history."""
    from schemas.conditions import ruled_out_at_open

    fields: dict[str, Any] = {**(data or {})}
    static = set(case_type.fields)
    if client is not None:
        fields["client"] = client
        fields["international"] = (
            str(client.get("country", "")).upper() != case_type.home_country.upper()
        )
        static |= {"client", "international"}
    found: dict[str, CaseType] = {}
    todo = [(case_type, True)]
    while todo:
        current, top = todo.pop()
        for stage in current.stages:
            if top and ruled_out_at_open(stage.when, fields, static):
                continue
            for element in stage.elements:
                if not isinstance(element, SubprocessElement) or element.case_type in found:
                    continue
                if top and ruled_out_at_open(element.when, fields, static):
                    continue
                child = registry.get(element.case_type)
                found[child.name] = child
                todo.append((child, False))
    return found

"""The case type registry: shipped files load; bad files are refused with readable messages."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from playbooks.registry import (
    DEFAULT_FOLDER,
    CaseTypeError,
    CaseTypeRegistry,
    UnknownCaseType,
    folders_from_setting,
)
from schemas.casetype import ApprovalElement, CaseType, CaseTypeSummary
from tests.conftest import test_settings
from tests.engine.helpers import FIXTURE_TYPES

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "case_types"
KNOWN_ROLES = test_settings().known_roles()  # API roles + the staff directory

# A minimal valid case type; tests append to or edit it.
BASE = """\
name: {name}
version: "1"
title: Test type
fields:
  amount: {{type: number, required: true}}
stages:
  - key: first
    title: First
    owner_role: case_manager
    elements:
{elements}
  - key: second
    title: Second
    owner_role: case_manager
    elements:
{later}
"""
NOTE = """\
      - key: {key}
        kind: notification
        title: Note
        milestone: case_update
        body: hello
"""


def write(folder: Path, filename: str, name: str, elements: str = "", later: str = "") -> Path:
    path = folder / filename
    elements = elements or NOTE.format(key=f"{name}_note")
    later = later or NOTE.format(key=f"{name}_later")
    path.write_text(BASE.format(name=name, elements=elements, later=later), encoding="utf-8")
    return path


def indent(text: str) -> str:
    return textwrap.indent(textwrap.dedent(text), " " * 6)


def refused(folder: Path) -> str:
    with pytest.raises(CaseTypeError) as info:
        CaseTypeRegistry.load([folder])
    return str(info.value)


# ----------------------------------------------------------------------------- shipped files
def test_every_shipped_case_type_loads() -> None:
    registry = CaseTypeRegistry.load(folders_from_setting([FIXTURES]), known_roles=None)
    names = registry.names()
    shipped = {p.stem for p in DEFAULT_FOLDER.glob("*.yaml") if ".calendar" not in p.suffixes}
    assert {"order_approval", "return_request", "security_review"} <= set(names)
    assert "vendor_due_diligence" in names
    fixtures = {p.stem for p in FIXTURE_TYPES.glob("*.yaml")}
    assert set(names) == shipped | fixtures
    assert set(registry.calendars) == {"uk_business_hours"}  # calendars load beside them


def test_an_unknown_calendar_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "x.yaml", "x")
    path.write_text(path.read_text().replace("title:", "calendar: moon_time\ntitle:", 1))
    problem = refused(tmp_path)
    assert "x.yaml: calendar: unknown calendar 'moon_time' (known: none)" in problem


@pytest.mark.parametrize(
    "name", ["order_approval", "return_request", "security_review", "vendor_due_diligence"]
)
def test_our_case_types_use_only_known_roles(name: str) -> None:
    registry = CaseTypeRegistry.load([DEFAULT_FOLDER, FIXTURES], known_roles=KNOWN_ROLES)
    case_type = registry.get(name)
    assert isinstance(case_type, CaseType)
    assert case_type.roles() <= KNOWN_ROLES
    # Every approval can be given by an API key role, so tests can approve.
    for stage in case_type.stages:
        for element in stage.elements:
            assert element.title
            if isinstance(element, ApprovalElement):
                assert {"case_manager", "compliance_reviewer"} & set(element.approver_roles)


def test_order_approval_shape() -> None:
    case_type = CaseTypeRegistry.load().get("order_approval", startable_only=True)
    assert [s.key for s in case_type.stages] == ["intake", "approval", "fulfilment"]
    approval = case_type.stage("approval")
    assert approval.access == ["case_manager", "compliance_reviewer"]
    group = next(e for e in approval.elements if e.key == "group_approval")
    assert isinstance(group, ApprovalElement) and group.required == 2
    assert group.when is not None and group.when.field == "order_value" and group.when.gt == 50000
    assert all(s.client_status and s.sla for s in case_type.stages)


def test_summaries_sorted_and_startable_filter(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", "bravo")
    (tmp_path / "a.yaml").write_text(
        BASE.format(
            name="alpha", elements=NOTE.format(key="n1"), later=NOTE.format(key="n2")
        ).replace("title: Test type", "title: Test type\nstartable: false"),
        encoding="utf-8",
    )
    registry = CaseTypeRegistry.load(tmp_path)
    summaries = registry.summaries()
    assert all(isinstance(s, CaseTypeSummary) for s in summaries)
    assert [s.name for s in summaries] == ["alpha", "bravo"]
    assert summaries[0].stages == ["first", "second"] and not summaries[0].startable
    assert registry.get("alpha").name == "alpha"  # the engine may still start it as a child
    with pytest.raises(UnknownCaseType, match="bravo") as info:
        registry.get("alpha", startable_only=True)
    assert "alpha" not in str(info.value).split("known case types:")[1]


def test_get_unknown_names_the_known_types() -> None:
    registry = CaseTypeRegistry.load()
    with pytest.raises(UnknownCaseType) as info:
        registry.get("nope")
    message = str(info.value)
    assert "'nope'" in message
    assert "order_approval" in message and "return_request" in message
    assert info.value.known == registry.startable_names()


# ----------------------------------------------------------------------------- refusals
def test_unknown_automation_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        "bad.yaml",
        "bad",
        indent("""\
            - key: launch
              kind: automation
              title: Launch
              action: launch_rockets
            """),
    )
    message = refused(tmp_path)
    assert "bad.yaml" in message
    assert "stages[0].elements[0] (element 'launch').action" in message
    assert "unknown automation 'launch_rockets'" in message


def test_unknown_compensation_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        "bad.yaml",
        "bad",
        indent("""\
            - key: provision
              kind: automation
              title: Provision
              action: provision_account
              compensate: unprovision
            """),
    )
    assert "compensate: unknown automation 'unprovision'" in refused(tmp_path)


def test_when_on_undeclared_field_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        "bad.yaml",
        "bad",
        indent("""\
            - key: big
              kind: task
              title: Big one
              assignee_role: case_manager
              when: {all: [{field: amount, gt: 10}, {field: colour, eq: red}]}
            """),
    )
    message = refused(tmp_path)
    assert "bad.yaml: stages[0].elements[0] (element 'big').when" in message
    assert "'colour' is not client.<field>" in message
    assert "declared fields: amount" in message


def test_condition_paths_follow_the_order_of_elements(tmp_path: Path) -> None:
    # stock is written by an automation in the SECOND stage: too late for the first.
    write(
        tmp_path,
        "bad.yaml",
        "bad",
        indent("""\
            - key: short
              kind: task
              title: Short
              assignee_role: case_manager
              when: {field: stock.available, eq: false}
            - key: vip
              kind: approval
              title: VIP
              approver_roles: [case_manager]
              required_when: [{when: {field: client.shoe_size, gt: 9}, required: 2}]
              auto_approve_when: {field: international, eq: false}
            """),
        indent("""\
            - key: check
              kind: automation
              title: Check
              action: check_stock
              output: stock
              when: {field: client.tier, eq: premium}
            - key: short_later
              kind: task
              title: Short later
              assignee_role: case_manager
              when: {field: stock.available, eq: false}
            """),
    )
    message = refused(tmp_path)
    assert "(element 'short').when: 'stock.available'" in message
    assert "(element 'vip').required_when[0].when: 'client.shoe_size'" in message
    assert "short_later" not in message  # after the automation: fine
    assert "auto_approve_when" not in message
    assert message.count("bad.yaml") == 2


def test_subprocess_to_unknown_type_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        "parent.yaml",
        "parent",
        indent("""\
            - key: child
              kind: subprocess
              title: Child case
              case_type: no_such_type
            """),
    )
    message = refused(tmp_path)
    assert "parent.yaml: stages[0].elements[0] (element 'child').case_type" in message
    assert "unknown case type 'no_such_type'" in message


def test_subprocess_cycles_are_refused(tmp_path: Path) -> None:
    sub = """\
        - key: {key}
          kind: subprocess
          title: Child case
          case_type: {target}
        """
    write(tmp_path, "a.yaml", "alpha", indent(sub.format(key="to_b", target="bravo")))
    write(tmp_path, "b.yaml", "bravo", indent(sub.format(key="to_a", target="alpha")))
    write(tmp_path, "c.yaml", "charlie", indent(sub.format(key="to_c", target="charlie")))
    message = refused(tmp_path)
    assert "subprocess cycle: alpha -> bravo -> alpha" in message
    assert "c.yaml" in message and "cannot start itself" in message


def test_subprocess_data_must_match_child_fields(tmp_path: Path) -> None:
    write(
        tmp_path,
        "parent.yaml",
        "parent",
        indent("""\
            - key: child
              kind: subprocess
              title: Child case
              case_type: kid
              data: {size: amount}
              output: kid_result
            """),
        indent("""\
            - key: after
              kind: task
              title: After
              assignee_role: case_manager
              when: {field: kid_result.ok, eq: true}
            """),
    )
    write(tmp_path, "kid.yaml", "kid")
    message = refused(tmp_path)
    assert "(element 'child').data.size: kid declares no such field" in message
    assert "kid requires amount" in message
    assert "after" not in message


def test_duplicate_name_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "one.yaml", "same")
    other = tmp_path / "more"
    other.mkdir()
    write(other, "two.yaml", "same")
    with pytest.raises(CaseTypeError) as info:
        CaseTypeRegistry.load([tmp_path, other])
    message = str(info.value)
    assert "one.yaml" in message and "two.yaml" in message
    assert "case type name 'same' is declared in more than one file" in message


def test_send_back_to_a_later_stage_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path,
        "bad.yaml",
        "bad",
        indent("""\
            - key: sign_off
              kind: approval
              title: Sign off
              approver_roles: [case_manager]
              on_reject: send_back
              send_back_to: second
            """),
    )
    message = refused(tmp_path)
    assert "bad.yaml" in message
    assert "sign_off: can only send back to an earlier stage" in message


def test_schema_errors_name_file_path_and_element(tmp_path: Path) -> None:
    write(
        tmp_path,
        "bad.yaml",
        "bad",
        indent("""\
            - key: remind
              kind: task
              title: Remind
              assignee_role: case_manager
              due: soon
            """),
    )
    message = refused(tmp_path)
    assert "bad.yaml: stages[0].elements[0].task.due (element 'remind')" in message
    assert "not a duration" in message


def test_checklist_keys_roles_notifications_and_yaml(tmp_path: Path) -> None:
    write(
        tmp_path,
        "bad.yaml",
        "bad",
        indent("""\
            - key: docs
              kind: documents
              title: Documents
              checklists:
                martian: [{kind: other, title: Anything}]
                default: [{kind: other, title: Anything}]
            - key: ping
              kind: notification
              title: Ping
              milestone: case_update
            - key: staff_ping
              kind: notification
              title: Staff ping
              milestone: task_reminder
              to: staff
            - key: chase
              kind: task
              title: Chase
              assignee_role: wizard
              escalate_to: case_manager
            """),
    )
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(CaseTypeError) as info:
        CaseTypeRegistry.load(tmp_path, known_roles=KNOWN_ROLES)
    message = str(info.value)
    assert "'martian' is not a client type or 'default'" in message
    assert "(element 'ping').body: milestone case_update needs a body" in message
    assert "(element 'staff_ping').role: a notification to staff names a role" in message
    assert "(element 'chase').escalate_to: escalation when overdue needs a due time" in message
    assert "broken.yaml: not valid YAML (line" in message
    # roles are checked only after a file is otherwise valid, so fix the rest and look again
    assert info.value.problems


def test_unknown_roles_are_refused_when_known_roles_given(tmp_path: Path) -> None:
    write(
        tmp_path,
        "roles.yaml",
        "roles",
        indent("""\
            - key: chase
              kind: task
              title: Chase
              assignee_role: wizard
            """),
    )
    CaseTypeRegistry.load(tmp_path)  # no role list: fine
    with pytest.raises(CaseTypeError, match=r"roles\.yaml: .*assignee_role: unknown role 'wizard'"):
        CaseTypeRegistry.load(tmp_path, known_roles=KNOWN_ROLES)


def test_all_problems_are_listed_at_once(tmp_path: Path) -> None:
    bad = indent("""\
        - key: launch
          kind: automation
          title: Launch
          action: launch_rockets
        """)
    write(tmp_path, "one.yaml", "one", bad.replace("launch", "launch_one"))
    write(tmp_path, "two.yaml", "two", bad.replace("launch", "launch_two"))
    with pytest.raises(CaseTypeError) as info:
        CaseTypeRegistry.load(tmp_path)
    assert len(info.value.problems) == 2
    assert str(info.value).startswith("2 problems in case types:")


def test_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CaseTypeError, match="does not exist"):
        CaseTypeRegistry.load([tmp_path / "nowhere"])


# ----------------------------------------------------------------------------- reload
def _touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_refresh_picks_up_changes_and_keeps_last_good(tmp_path: Path) -> None:
    path = write(tmp_path, "t.yaml", "thing")
    registry = CaseTypeRegistry.load(tmp_path)
    assert registry.refresh() is False
    assert registry.get("thing").version == "1"

    path.write_text(path.read_text().replace('version: "1"', 'version: "2"'))
    _touch_later(path)
    assert registry.refresh() is True
    assert registry.get("thing").version == "2"

    # A broken edit: logged, version 2 stays in service.
    path.write_text(path.read_text().replace("action", "x").replace("stages:", "stagez:"))
    _touch_later(path)
    assert registry.refresh() is False
    assert registry.get("thing").version == "2"

    # A new file whose subprocess points nowhere is refused; the rest stays.
    write(
        tmp_path,
        "n.yaml",
        "newer",
        indent("""\
            - key: child
              kind: subprocess
              title: Child
              case_type: ghost
            """),
    )
    assert registry.refresh() is False
    assert registry.names() == ["thing"]

    # A good new file arrives.
    (tmp_path / "n.yaml").unlink()
    write(tmp_path, "m.yaml", "more")
    assert registry.refresh() is True
    assert registry.names() == ["more", "thing"]


def test_milestones_checked_when_known_milestones_given(tmp_path: Path) -> None:
    note = NOTE.format(key="note").replace("milestone: case_update", "milestone: party_time")
    write(tmp_path, "m.yaml", "m", note)
    CaseTypeRegistry.load(tmp_path)  # no milestone list: fine
    with pytest.raises(CaseTypeError, match="unknown milestone 'party_time'"):
        CaseTypeRegistry.load(tmp_path, known_milestones={"case_update"})


def test_folders_from_setting() -> None:
    assert folders_from_setting(None) == [DEFAULT_FOLDER]
    folders = folders_from_setting(f"tests/fixtures/case_types{os.pathsep} {FIXTURES}")
    assert folders == [DEFAULT_FOLDER, FIXTURES]


def test_auto_complete_rules_read_case_facts_and_only_known_ones(tmp_path: Path) -> None:
    """case.* facts are for auto_complete rules only, and a misspelt one is named."""
    path = write(tmp_path, "stp.yaml", "stp")
    text = path.read_text(encoding="utf-8").replace(
        "  - key: second\n",
        "    auto_complete:\n"
        "      - name: clean\n"
        "        when: {all: [{field: case.human_steps, eq: 0}, {field: case.paused, eq: false}]}\n"
        "  - key: second\n"
        "    when: {field: case.human_steps, eq: 0}\n",
    )
    path.write_text(text, encoding="utf-8")
    message = refused(tmp_path)
    rule = "stages[0] (stage 'first').auto_complete[0] (rule 'clean').when"
    assert f"{rule}: 'case.paused'" in message
    assert "case.human_steps, case.ever_paused, case.reopened" in message
    assert "stages[1] (stage 'second').when: 'case.human_steps' is not client.<field>" in message
    assert message.count("case.human_steps") == 2  # the rule's own use is accepted

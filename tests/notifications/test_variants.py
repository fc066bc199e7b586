"""A/B template variants: weighted, deterministic assignment and per-variant templates."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from notifications import SMS_MAX_CHARS, Milestone, render, sample_context
from notifications.contexts import DocumentsNeededContext, NeededDocument
from notifications.variants import (
    UnknownVariantError,
    VariantConfigError,
    all_variant_sets,
    load_variants,
    pick,
    variant_set,
)

REPO = Path(__file__).resolve().parents[2]
SIMULATED = [f"ONB-2026-{i:06d}" for i in range(1000)]
"""1,000 simulated case refs (fixed, so the split is the same on every run)."""
TOLERANCE = 0.05


def split(refs: list[str], chooser: object) -> dict[str, float]:
    counts: dict[str, int] = {}
    for ref in refs:
        name = chooser(ref)  # type: ignore[operator]
        counts[name] = counts.get(name, 0) + 1
    return {name: n / len(refs) for name, n in counts.items()}


# ------------------------------------------------------------------ assignment
def test_documents_needed_splits_1000_cases_within_5_points_of_its_weights() -> None:
    vs = variant_set("documents_needed")
    assert vs is not None and vs.names == ("a", "b")
    shares = split(SIMULATED, lambda ref: pick("documents_needed", ref))
    assert set(shares) == set(vs.names)
    for name in vs.names:
        assert abs(shares[name] - vs.share(name)) <= TOLERANCE, (name, shares)


def test_every_shipped_set_splits_within_5_points() -> None:
    sets = all_variant_sets()
    assert {"documents_needed", "case_created"} <= set(sets)
    for milestone, vs in sets.items():
        shares = split(SIMULATED, vs.pick)
        for name in vs.names:
            assert abs(shares.get(name, 0.0) - vs.share(name)) <= TOLERANCE, (milestone, shares)


def write_set(root: Path, milestone: str, yaml_text: str, files: dict[str, str] | None = None):
    folder = root / milestone
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("subject.txt.j2", "body.txt.j2", "body.html.j2", "sms.txt.j2"):
        (folder / name).write_text("base\n")
    (folder / "variants.yaml").write_text(yaml_text)
    for rel, text in (files or {}).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def test_a_70_30_set_from_a_folder_splits_within_5_points(tmp_path: Path) -> None:
    write_set(
        tmp_path,
        "case_created",
        "variants:\n  control: {weight: 70}\n  shorter:\n    weight: 30\n",
        {"variants/shorter/subject.txt.j2": "short\n"},
    )
    vs = load_variants(tmp_path, "case_created")
    assert vs is not None
    assert vs.variants == (("control", 70), ("shorter", 30))
    assert vs.overrides == {"control": frozenset(), "shorter": frozenset({"subject.txt.j2"})}
    shares = split(SIMULATED, vs.pick)
    assert abs(shares["control"] - 0.7) <= TOLERANCE, shares
    assert abs(shares["shorter"] - 0.3) <= TOLERANCE, shares


def test_the_same_case_always_gets_the_same_variant() -> None:
    first = [pick("documents_needed", ref) for ref in SIMULATED[:200]]
    again = [pick("documents_needed", ref) for ref in SIMULATED[:200]]
    assert first == again
    assert pick("proposal", "ONB-2026-000001") is None  # no variants.yaml
    assert pick("no_such_milestone", "ONB-2026-000001") is None


def test_assignment_is_sha256_of_ref_and_milestone_mod_total_weight() -> None:
    """The documented rule, written out independently: stable across processes and Pythons."""
    for ref in SIMULATED[:300]:
        digest = hashlib.sha256(f"{ref}:documents_needed".encode()).hexdigest()
        expected = "a" if int(digest, 16) % 100 < 50 else "b"
        assert pick("documents_needed", ref) == expected, ref


def test_assignment_is_the_same_in_another_process() -> None:
    refs = SIMULATED[:50]
    here = [pick("documents_needed", ref) for ref in refs]
    code = (
        "import sys\n"
        "from notifications.variants import pick\n"
        "print(','.join(pick('documents_needed', r) for r in sys.argv[1:]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *refs],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert out.stdout.strip().split(",") == here


def test_milestones_split_independently() -> None:
    """A case in b for one milestone is not therefore in b for another."""
    same = sum(pick("documents_needed", r) == pick("case_created", r) for r in SIMULATED)
    assert 400 <= same <= 600


# ------------------------------------------------------------------ rendering
def test_render_with_a_variant_uses_its_files_and_falls_back_for_the_rest() -> None:
    ctx = sample_context(Milestone.DOCUMENTS_NEEDED)
    base = render(Milestone.DOCUMENTS_NEEDED, ctx)
    a = render(Milestone.DOCUMENTS_NEEDED, ctx, variant="a")
    b = render(Milestone.DOCUMENTS_NEEDED, ctx, variant="b")
    assert base.variant is None and a.variant == "a" and b.variant == "b"
    # a is the base templates
    assert (a.subject, a.text, a.html, a.sms) == (base.subject, base.text, base.html, base.sms)
    # b has its own subject and bodies...
    assert b.subject == "Case ONB-2025-000123: please send 2 documents by 8 March 2025"
    assert "What to send:" in b.text and "Documents needed:" not in b.text
    assert "Why: The image is blurred and unreadable" in b.text
    assert "Upload your documents: https://portal.example.com/cases/ONB-2025-000123" in b.text
    assert "<h2" in b.html and "What to send" in b.html and "Passport of Jane Doe" in b.html
    assert f"<title>{b.subject}</title>" in b.html
    # ...and no SMS of its own: the base SMS
    assert b.sms == base.sms


def test_case_created_variant_b_changes_only_the_subject() -> None:
    ctx = sample_context(Milestone.CASE_CREATED)
    base = render(Milestone.CASE_CREATED, ctx)
    b = render(Milestone.CASE_CREATED, ctx, variant="b")
    assert b.subject == "Your onboarding case ONB-2025-000123 is open: 3 documents to send"
    assert b.subject != base.subject
    assert (b.text, b.sms) == (base.text, base.sms)
    assert b.html == base.html.replace(base.subject, b.subject)


def test_variant_html_is_escaped_and_sms_fits() -> None:
    portal = "https://portal.example.com/cases/ONB-2025-004711?t=" + "x" * 120
    ctx = DocumentsNeededContext(
        case_ref="ONB-2025-004711",
        client_name="Blue <b>Harbour</b> & Co",
        status="Waiting for your documents",
        next_steps=["Upload the certified passport copy " * 5],
        estimated_completion=datetime(2025, 6, 11, tzinfo=UTC),
        portal_url=portal,
        documents_needed=[
            NeededDocument(name="<script>alert(1)</script>", reason="Expired & blurred"),
        ],
        respond_by=datetime(2025, 6, 2, tzinfo=UTC) + timedelta(days=5),
    )
    for name in ("a", "b"):
        msg = render(Milestone.DOCUMENTS_NEEDED, ctx, variant=name)
        assert "<script>" not in msg.html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in msg.html
        assert "Expired &amp; blurred" in msg.html
        assert msg.sms is not None and len(msg.sms) <= SMS_MAX_CHARS
        assert msg.sms.endswith(portal)
    one = render(Milestone.DOCUMENTS_NEEDED, ctx, variant="b")
    assert one.subject == "Case ONB-2025-004711: please send 1 document by 7 June 2025"


def test_every_variant_renders_every_format_within_limits() -> None:
    for milestone, vs in all_variant_sets().items():
        ctx = sample_context(milestone)
        for name in vs.names:
            msg = render(milestone, ctx, variant=name)
            assert msg.subject and msg.text.strip() and msg.html.startswith("<!DOCTYPE html>")
            assert msg.sms is not None and len(msg.sms) <= SMS_MAX_CHARS
            assert msg.sms.isascii()
            assert "ONB-2025-000123" in msg.subject + msg.text


def test_render_refuses_a_variant_the_milestone_lacks() -> None:
    ctx = sample_context(Milestone.DOCUMENTS_NEEDED)
    with pytest.raises(UnknownVariantError, match="has no variant 'c'"):
        render(Milestone.DOCUMENTS_NEEDED, ctx, variant="c")
    with pytest.raises(UnknownVariantError, match="has no variants"):
        render(Milestone.PROPOSAL, sample_context(Milestone.PROPOSAL), variant="a")
    assert issubclass(UnknownVariantError, ValueError)  # the send path's non-retryable refusal


# ------------------------------------------------------------------ bad files
@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("variants:\n  a: {weight: 50}\n", "at least 2"),
        ("variants:\n  a: {weight: 0}\n  b: {weight: 50}\n", "variants.a.weight"),
        ("variants:\n  a: {weight: -5}\n  b: {weight: 50}\n", "variants.a.weight"),
        ("variants:\n  a: {weight: 1.5}\n  b: {weight: 50}\n", "variants.a.weight"),
        ("variants:\n  a: {weight: '50'}\n  b: {weight: 50}\n", "variants.a.weight"),
        ("variants:\n  a: {weight: true}\n  b: {weight: 50}\n", "variants.a.weight"),
        ("variants:\n  a: {}\n  b: {weight: 50}\n", "variants.a.weight"),
        ("variants:\n  A: {weight: 50}\n  b: {weight: 50}\n", "String should match pattern"),
        ("variants:\n  2nd: {weight: 50}\n  b: {weight: 50}\n", "String should match pattern"),
        ("variants:\n  a: {weight: 50, colour: red}\n  b: {weight: 50}\n", "variants.a.colour"),
        ("variants: {a: {weight: 50}, b: {weight: 50}}\nweights: 1\n", "weights"),
        ("- a\n- b\n", "expected a mapping"),
        ("", "expected a mapping"),
        ("variants: [a: {weight: 50}\n", "not valid YAML"),
    ],
)
def test_a_bad_variants_file_is_refused_with_a_clear_error(
    tmp_path: Path, yaml_text: str, message: str
) -> None:
    write_set(tmp_path, "documents_needed", yaml_text)
    with pytest.raises(VariantConfigError, match=r"documents_needed/variants\.yaml") as caught:
        load_variants(tmp_path, "documents_needed")
    assert message in str(caught.value)


def test_a_folder_of_no_declared_variant_is_refused(tmp_path: Path) -> None:
    write_set(
        tmp_path,
        "documents_needed",
        "variants:\n  a: {weight: 1}\n  b: {weight: 1}\n",
        {"variants/c/subject.txt.j2": "typo\n"},
    )
    with pytest.raises(VariantConfigError, match="variants/c is not a declared variant"):
        load_variants(tmp_path, "documents_needed")


def test_a_file_that_is_not_one_of_the_milestones_templates_is_refused(tmp_path: Path) -> None:
    write_set(
        tmp_path,
        "documents_needed",
        "variants:\n  a: {weight: 1}\n  b: {weight: 1}\n",
        {"variants/b/subjcet.txt.j2": "typo\n"},
    )
    with pytest.raises(VariantConfigError, match=r"variants/b/subjcet\.txt\.j2 is not one of"):
        load_variants(tmp_path, "documents_needed")


def test_no_variants_file_means_no_variants(tmp_path: Path) -> None:
    (tmp_path / "documents_needed").mkdir()
    assert load_variants(tmp_path, "documents_needed") is None

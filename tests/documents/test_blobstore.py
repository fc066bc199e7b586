"""The local blob store: atomic writes, and no key can reach outside its root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from integrations.blobstore import (
    BlobNotFoundError,
    BlobStore,
    InvalidBlobKeyError,
    LocalBlobStore,
    case_document_key,
    validate_key,
)

SHA = "ab" * 32


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_round_trip_and_idempotent_delete(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    assert isinstance(store, BlobStore)
    key = case_document_key("ACME-0001", SHA)
    assert key == f"cases/ACME-0001/{SHA}"
    assert not store.exists(key)
    store.put(key, b"first")
    store.put(key, b"second")
    assert store.get(key) == b"second" and store.exists(key)
    assert files_under(tmp_path) == [key]
    store.delete(key)
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(BlobNotFoundError):
        store.get(key)


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path)
    key = "cases/C-1/" + SHA
    store.put(key, b"old")

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.put(key, b"new content that never lands")
    monkeypatch.undo()
    assert store.get(key) == b"old"
    assert files_under(tmp_path) == [key]


def test_writes_go_through_a_temp_file_in_the_same_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rename is what makes it atomic: the final name only ever holds complete content."""
    store = LocalBlobStore(tmp_path)
    seen: list[tuple[str, bytes]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        assert not Path(dst).exists()
        seen.append((Path(src).name, Path(src).read_bytes()))
        assert Path(src).parent == Path(dst).parent
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    store.put("a/b", b"payload")
    assert seen and seen[0][0].startswith(".tmp-") and seen[0][1] == b"payload"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../escape",
        "cases/../../etc/passwd",
        "/etc/passwd",
        "cases//x",
        "cases/./x",
        "cases/x/",
        "a\x00b",
        "a\\b",
        "..\\..\\windows",
        ".tmp-abc",
        "cases/.hidden",
        "cases/has space",
        "x" * 400,
    ],
)
def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    store = LocalBlobStore(tmp_path / "root")
    with pytest.raises(InvalidBlobKeyError):
        validate_key(key)
    with pytest.raises(InvalidBlobKeyError):
        store.put(key, b"x")
    with pytest.raises(InvalidBlobKeyError):
        store.get(key)
    assert not (tmp_path / "escape").exists()
    assert files_under(tmp_path) == []


def test_a_symlink_inside_the_root_cannot_lead_outside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "cases").symlink_to(outside)
    store = LocalBlobStore(root)
    with pytest.raises(InvalidBlobKeyError):
        store.put("cases/x", b"x")
    assert list(outside.iterdir()) == []


def test_document_keys_need_a_real_digest() -> None:
    with pytest.raises(InvalidBlobKeyError):
        case_document_key("ACME-1", "../../etc/passwd")
    with pytest.raises(InvalidBlobKeyError):
        case_document_key("../x", SHA)

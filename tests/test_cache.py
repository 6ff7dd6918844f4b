"""The one stable hash, the one package fingerprint and the one atomic write (``ehrcausal.cache``)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from ehrcausal import cache
from ehrcausal.cache import (
    ResultCache,
    atomic_write_bytes,
    atomic_write_text,
    canonical_json,
    file_digest,
    package_files,
    package_fingerprint,
    stable_hash,
)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_stable_hash_is_sha256_of_canonical_json() -> None:
    assert canonical_json({"b": [1, 2.5], "a": None}) == '{"a":null,"b":[1,2.5]}'
    assert stable_hash({"b": 1, "a": 2}) == stable_hash({"a": 2, "b": 1})
    assert stable_hash({"a": 1}) == hashlib.sha256(b'{"a":1}').hexdigest()
    assert stable_hash({"a": 1}) != stable_hash({"a": 1.5})
    assert stable_hash({"p": Path("x")}) == stable_hash({"p": "x"})  # str() for other objects


def test_atomic_write_replaces_and_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.bin"
    assert atomic_write_bytes(target, b"\x00\x01") == target  # creates the folder
    assert target.read_bytes() == b"\x00\x01"
    atomic_write_text(target, "ünïcode\n")
    assert target.read_bytes() == "ünïcode\n".encode()  # UTF-8 whatever the locale
    assert leftovers(target.parent) == []
    mode = target.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # default permissions, not mkstemp's 0600


def test_atomic_write_failure_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "record.json"
    target.write_text("old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(cache.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []  # the temporary file was removed


def test_atomic_write_rejects_the_wrong_type(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="atomic_write_bytes needs bytes, got str"):
        atomic_write_bytes(tmp_path / "x", "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="atomic_write_text needs str, got bytes"):
        atomic_write_text(tmp_path / "x", b"bytes")  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()


def test_package_fingerprint_follows_sources_and_data_only(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("A = 1\n")
    (pkg / "sub" / "table.json").write_text("{}")
    assert [p.relative_to(pkg).as_posix() for p in package_files(pkg)] == [
        "__init__.py",
        "sub/table.json",
    ]
    h0 = package_fingerprint(pkg)
    # Byte code and caches do not count; the folder's location does not either.
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (pkg / "sub" / "y.pyc").write_bytes(b"\0")
    assert package_fingerprint(pkg) == h0
    moved = shutil.copytree(pkg, tmp_path / "elsewhere" / "pkg")
    assert package_fingerprint(moved) == h0
    # Content, names and new files do.
    (pkg / "sub" / "table.json").write_text('{"a": 1}')
    h1 = package_fingerprint(pkg)
    (pkg / "sub" / "table.json").rename(pkg / "sub" / "other.json")
    h2 = package_fingerprint(pkg)
    (pkg / "README.md").write_text("data file\n")
    h3 = package_fingerprint(pkg)
    assert len({h0, h1, h2, h3}) == 4
    assert file_digest(pkg / "README.md") == hashlib.sha256(b"data file\n").hexdigest()
    with pytest.raises(NotADirectoryError, match="package folder not found"):
        package_fingerprint(tmp_path / "missing")


def test_installed_package_fingerprint_covers_this_package() -> None:
    names = {p.name for p in package_files()}
    assert {"cache.py", "checksums.json", "cli.py"} <= names
    assert package_fingerprint() == package_fingerprint(Path(cache.__file__).parent)


def test_result_cache_round_trip_damage_and_disabled(tmp_path: Path) -> None:
    results = ResultCache(tmp_path, namespace="fits")
    assert results.get({"a": 1}) is None
    results.put({"a": 1}, {"pehe": 0.25, "curve": [1.0, 2.0]})
    assert results.get({"a": 1}) == {"pehe": 0.25, "curve": [1.0, 2.0]}
    assert results.get({"a": 2}) is None
    (record,) = (tmp_path / "fits").glob("*.json")
    assert leftovers(tmp_path / "fits") == []  # written atomically, nothing left behind
    record.write_text("{not json")
    assert results.get({"a": 1}) is None  # a damaged record is recomputed, not an error
    disabled = ResultCache(None)
    disabled.put({"a": 1}, 1)
    assert disabled.get({"a": 1}) is None

"""The sync comparison rules and filters (ossdesk.core.sync), as pure functions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ossdesk.core.oss import ObjectInfo
from ossdesk.core.sync import (
    DEFAULT_EXCLUDES,
    MTIME_META,
    KeyFilter,
    LocalFile,
    UploadRecord,
    may_delete,
    pair,
    patterns,
    read_patterns,
    relative_key,
    same_by_crc,
    same_by_metadata,
    same_by_record,
)


def obj(key: str, size: int = 5, etag: str = "E1", crc64: int | None = None,
        metadata: dict[str, str] | None = None) -> ObjectInfo:
    return ObjectInfo(key=key, size=size, etag=etag, crc64=crc64, content_type=None,
                      last_modified=None, metadata=metadata or {})


def local(key: str, size: int = 5, mtime_ns: int = 100) -> LocalFile:
    return LocalFile(Path("/data") / key, key, size, mtime_ns)


def test_pair_streams_the_remote_side_and_adds_the_local_only_keys_sorted() -> None:
    files = {f.key: f for f in (local("p/b"), local("p/a"), local("p/d"))}
    pulled: list[str] = []

    def remote() -> Iterator[ObjectInfo]:
        for key in ("p/a", "p/c"):
            pulled.append(key)
            yield obj(key)

    pairs = pair(files, remote())
    first = next(pairs)
    assert pulled == ["p/a"]  # lazily: one object at a time
    assert first[0] is not None and first[0].key == "p/a" and first[1] is not None
    rest = [(f.key if f else None, o.key if o else None) for f, o in pairs]
    assert rest == [(None, "p/c"), ("p/b", None), ("p/d", None)]
    assert files == {}


def test_the_upload_list_shows_an_object_holds_this_version() -> None:
    file = local("p/a", size=5, mtime_ns=100)
    record = UploadRecord(file.path, 5, 100, '"e1"', 7)
    assert same_by_record(file, obj("p/a", etag="E1"), record)
    # Another mtime, another size, another source, or the object replaced since: no.
    assert not same_by_record(local("p/a", mtime_ns=101), obj("p/a", etag="E1"), record)
    assert not same_by_record(file, obj("p/a", size=6, etag="E1"),
                              UploadRecord(file.path, 6, 100, "E1", 7))
    assert not same_by_record(file, obj("p/a", etag="E1"),
                              UploadRecord(Path("/elsewhere/a"), 5, 100, "E1", 7))
    assert not same_by_record(file, obj("p/a", etag="E2"), record)
    assert not same_by_record(file, obj("p/a"), None)
    assert not same_by_record(file, obj("p/a"), UploadRecord(file.path, 5, 100, None, 7))


def test_the_object_metadata_mtime_must_equal_the_files() -> None:
    file = local("p/a", size=5, mtime_ns=123456789012345678)
    assert same_by_metadata(file, obj("p/a", metadata={MTIME_META: "123456789012345678"}))
    assert not same_by_metadata(file, obj("p/a", metadata={MTIME_META: "123456789012345679"}))
    assert not same_by_metadata(file, obj("p/a", size=4,
                                          metadata={MTIME_META: "123456789012345678"}))
    assert not same_by_metadata(file, obj("p/a"))  # not uploaded by sync
    assert not same_by_metadata(file, None)  # gone since the listing


def test_checksum_compares_the_servers_crc64() -> None:
    assert same_by_crc(42, 5, obj("k", crc64=42))
    assert not same_by_crc(42, 5, obj("k", crc64=41))
    assert not same_by_crc(42, 5, obj("k", crc64=None))
    assert not same_by_crc(42, 6, obj("k", crc64=42))
    assert not same_by_crc(42, 5, None)


@pytest.mark.parametrize(("relative", "wanted"), [
    ("photo.jpg", True),
    ("a/b/photo.jpg", True),
    (".DS_Store", False),
    ("a/.DS_Store", False),
    ("a/Thumbs.db", False),
    ("~$report.docx", False),
    ("a/b/download.part", False),
    ("movie.mp4.crdownload", False),
    ("x.tmp", False),
    (".env", True),  # other dot files are synced
    ("a.tmp/inside.txt", False),  # a folder matching a pattern: everything in it
])
def test_default_excludes(relative: str, wanted: bool) -> None:
    keys = KeyFilter((), patterns([], defaults=True))
    assert keys.wanted(relative) is wanted
    assert KeyFilter((), patterns([], defaults=False)).wanted(relative)


def test_exclude_and_include_globs_on_relative_paths() -> None:
    keys = KeyFilter(includes=("*.jpg", "docs"), excludes=("cache", "private/*.jpg"))
    assert keys.wanted("a/b.jpg")
    assert keys.wanted("docs/readme.md")  # inside an included folder
    assert not keys.wanted("a/b.png")  # matches no include
    assert not keys.wanted("cache/x.jpg")  # inside an excluded folder
    assert not keys.wanted("deep/cache/x.jpg")
    assert not keys.wanted("private/x.jpg")
    assert keys.wanted("private/sub/x.jpg")  # "*" does not cross "/"
    assert not KeyFilter(excludes=("Cache",)).wanted("Cache/x") \
        and KeyFilter(excludes=("Cache",)).wanted("cache/x")  # case-sensitive


def test_exclude_from_file_lines() -> None:
    assert read_patterns(["# comment\n", "\n", "  *.bak \r\n", "build/\n"]) == ["*.bak",
                                                                                "build/"]
    assert not KeyFilter(excludes=("build/",)).wanted("build/out.o")
    assert set(DEFAULT_EXCLUDES) >= {".DS_Store", "Thumbs.db", "*.tmp"}


def test_deletes_stay_under_the_prefix_and_spare_excluded_paths() -> None:
    keys = KeyFilter((), patterns(["keep/*"], defaults=True))
    assert may_delete("backup/old.txt", "backup/", keys)
    assert not may_delete("backup2/x", "backup/", keys)  # shares the string, not the folder
    assert not may_delete("other.txt", "backup/", keys)
    assert not may_delete("backup/", "backup/", keys)  # the prefix's folder marker
    assert not may_delete("backup/sub/", "backup/", keys)  # a folder marker
    assert not may_delete("backup/.DS_Store", "backup/", keys)  # excluded: kept
    assert not may_delete("backup/keep/a", "backup/", keys)
    with pytest.raises(ValueError, match="not under"):
        relative_key("backup2/x", "backup/")

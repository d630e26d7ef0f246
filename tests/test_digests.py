"""Content hashes as rerun triggers: other content is noticed whatever its file times."""

from __future__ import annotations

import os

from tempcompress.provenance import content_digests, file_sha256


def test_a_copy_with_the_original_time_kept_is_noticed_and_a_touch_is_not(tmp_path) -> None:
    a, b, cache = tmp_path / "a.npy", tmp_path / "b.npy", tmp_path / "cache" / "digests.json"
    a.write_bytes(b"x" * 64)
    b.write_bytes(b"y" * 64)  # same size: only content tells them apart
    first = content_digests({"a": a, "missing": tmp_path / "none.npy"}, cache)
    assert first == {"a": file_sha256(a)[:16], "missing": None} and cache.is_file()
    st = a.stat()
    a.write_bytes(b.read_bytes())
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))  # what cp -p leaves: same size and mtime
    assert content_digests({"a": a}, cache)["a"] == file_sha256(b)[:16] != first["a"]
    os.utime(a)  # touched: same content, same digest
    assert content_digests({"a": a}, cache)["a"] == file_sha256(b)[:16]


def test_an_unreadable_cache_only_costs_a_rehash(tmp_path) -> None:
    a, cache = tmp_path / "a.npy", tmp_path / "digests.json"
    a.write_bytes(b"z" * 8)
    cache.write_text("{truncated")
    assert content_digests({"a": a}, cache) == {"a": file_sha256(a)[:16]}

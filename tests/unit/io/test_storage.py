"""Storage locations: local and s3:// roots, children and siblings keep their kind."""

import pytest

from fraudrisk.config import LakeSettings
from fraudrisk.io.storage import open_storage

S3 = LakeSettings(s3_endpoint_url="http://127.0.0.1:9", s3_access_key_id="k")


def test_local_sibling_and_child(tmp_path):
    storage = open_storage(str(tmp_path / "lake"))
    beside = storage.sibling("quarantine")
    assert beside is not None and beside.root == str(tmp_path / "quarantine") and beside.is_local
    assert storage.child("_q").root == str(tmp_path / "lake" / "_q")


def test_s3_locations_stay_s3():
    storage = open_storage("s3://risk/lake", S3)
    assert not storage.is_local and storage.root == "risk/lake"
    beside = storage.sibling("quarantine")
    assert beside is not None and not beside.is_local
    assert (beside.root, beside.uri) == ("risk/quarantine", "s3://risk/quarantine")
    bucket_root = open_storage("s3://risk", S3)
    assert bucket_root.sibling("quarantine") is None
    child = bucket_root.child("_quarantine")
    assert (child.root, child.uri, child.is_local) == (
        "risk/_quarantine",
        "s3://risk/_quarantine",
        False,
    )


def test_unknown_scheme_is_a_clear_error():
    with pytest.raises(ValueError, match="use a local path or s3://"):
        open_storage("gs://bucket/lake")


def test_atomic_write_leaves_only_the_target(tmp_path):
    storage = open_storage(str(tmp_path))
    storage.write_bytes_atomic("a/b.bin", b"x" * 10)
    storage.write_bytes_atomic("a/b.bin", b"y" * 5)
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.bin"]
    assert storage.read_bytes("a/b.bin") == b"yyyyy"

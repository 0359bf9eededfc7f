"""One storage interface for local paths and ``s3://`` URIs, on top of ``pyarrow.fs``.

Writes are atomic: the bytes are produced in memory first, then either renamed into place
from a temporary file (local) or put as one object (S3, where a completed upload is atomic).
A crash therefore never leaves half a file behind.
"""

from __future__ import annotations

import posixpath
import uuid
from dataclasses import dataclass, replace
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from fraudrisk.config import LakeSettings

#: Files and folders whose names start with these are invisible to readers (pyarrow's default).
HIDDEN_PREFIXES = ("_", ".")


@dataclass(frozen=True)
class Storage:
    """A filesystem and a root path inside it; every path argument is relative to the root."""

    fs: pafs.FileSystem
    root: str
    uri: str
    is_local: bool = True

    def child(self, relative: str) -> Storage:
        """The storage rooted at ``relative`` under this root (same filesystem)."""
        return replace(self, root=self.path(relative), uri=f"{self.uri.rstrip('/')}/{relative}")

    def sibling(self, name: str) -> Storage | None:
        """The storage at ``name`` beside this root; None for a root without parent (a bucket)."""
        parent = posixpath.dirname(self.root.rstrip("/"))
        if not parent:
            return None
        uri_parent = self.uri.rstrip("/").rsplit("/", 1)[0]
        return replace(self, root=posixpath.join(parent, name), uri=f"{uri_parent}/{name}")

    def path(self, relative: str = "") -> str:
        """The absolute path (inside the filesystem) of a relative path."""
        return posixpath.join(self.root, relative) if relative else self.root

    def write_bytes_atomic(self, relative: str, data: bytes | pa.Buffer) -> None:
        """Write ``data`` to ``relative`` so that readers see the whole file or nothing."""
        target = self.path(relative)
        self.fs.create_dir(posixpath.dirname(target), recursive=True)
        if not self.is_local:
            with self.fs.open_output_stream(target) as out:
                out.write(data)
            return
        # A hidden sibling: same directory (so the rename is atomic), skipped by readers.
        tmp = posixpath.join(
            posixpath.dirname(target), f".{posixpath.basename(target)}.{uuid.uuid4().hex}.tmp"
        )
        try:
            with self.fs.open_output_stream(tmp) as out:
                out.write(data)
            self.fs.move(tmp, target)
        finally:
            if self.exists_abs(tmp):
                self.fs.delete_file(tmp)

    def read_bytes(self, relative: str) -> bytes:
        """Read a whole file."""
        with self.fs.open_input_stream(self.path(relative)) as stream:
            return bytes(stream.read())

    def exists(self, relative: str) -> bool:
        """Whether a file or directory exists."""
        return self.exists_abs(self.path(relative))

    def exists_abs(self, absolute: str) -> bool:
        """Whether an absolute path (inside the filesystem) exists."""
        return bool(self.fs.get_file_info(absolute).type != pafs.FileType.NotFound)

    def list_dir(self, relative: str = "") -> list[pafs.FileInfo]:
        """Entries directly under a directory, hidden ones excluded; empty if it is missing."""
        selector = pafs.FileSelector(self.path(relative), allow_not_found=True, recursive=False)
        return [
            info
            for info in self.fs.get_file_info(selector)
            if not info.base_name.startswith(HIDDEN_PREFIXES)
        ]

    def delete_file(self, relative: str) -> None:
        """Delete one file."""
        self.fs.delete_file(self.path(relative))


def open_storage(uri: str, settings: LakeSettings | None = None) -> Storage:
    """Open a local path or an ``s3://bucket/prefix`` URI.

    Args:
        uri: A local path (relative or absolute) or ``s3://bucket/prefix``.
        settings: S3 endpoint and credentials; the defaults use the AWS credential chain.

    Returns:
        The storage rooted at ``uri``.

    Raises:
        ValueError: If the URI scheme is not supported.
    """
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        local = pafs.LocalFileSystem()
        root = posixpath.abspath(parsed.path if parsed.scheme == "file" else uri)
        return Storage(fs=local, root=root, uri=uri)
    if parsed.scheme == "s3":
        fs = _s3_filesystem(settings or LakeSettings())
        root = f"{parsed.netloc}{parsed.path}".rstrip("/")
        return Storage(fs=fs, root=root, uri=uri, is_local=False)
    raise ValueError(f"unsupported storage URI {uri!r}: use a local path or s3://bucket/prefix")


def _s3_filesystem(settings: LakeSettings) -> pafs.S3FileSystem:
    kwargs: dict[str, object] = {"region": settings.s3_region}
    if settings.s3_endpoint_url:
        endpoint = urlparse(settings.s3_endpoint_url)
        kwargs["endpoint_override"] = endpoint.netloc or endpoint.path
        kwargs["scheme"] = endpoint.scheme or "https"
    if settings.s3_access_key_id:
        kwargs["access_key"] = settings.s3_access_key_id
        kwargs["secret_key"] = settings.s3_secret_access_key.get_secret_value()
    return pafs.S3FileSystem(**kwargs)

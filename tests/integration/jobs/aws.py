"""A real S3- and Kinesis-compatible server on loopback (``moto_server``, from the dev extra).

Used by the integration tests of batch scoring on S3 and of the Kinesis path. The server is a
subprocess on a free 127.0.0.1 port, stopped (terminate, then kill) when the context ends.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from fraudrisk.config import KinesisSettings, LakeSettings
from fraudrisk.io.kafka_broker import free_port

REGION = "us-east-1"
KEY_ID, SECRET = "testing", "testing"


def moto_binary() -> str:
    """``moto_server`` of this environment (beside the interpreter), else from PATH."""
    beside = Path(sys.executable).parent / "moto_server"
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None:
        raise RuntimeError("moto_server not found: install the dev extra (moto[server])")
    return found


@contextmanager
def moto_server(log: Path, startup_s: float = 30.0) -> Iterator[str]:
    """Run ``moto_server -H 127.0.0.1 -p PORT``; yields its endpoint URL."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [moto_binary(), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        endpoint = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(process, endpoint, startup_s, log)
            yield endpoint
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _wait_ready(process: subprocess.Popen[bytes], endpoint: str, timeout_s: float, log: Path):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                message = f"moto_server did not start:\n{log.read_text()[-2000:]}"
                raise RuntimeError(message) from None
            time.sleep(0.1)


def lake_settings(endpoint: str) -> LakeSettings:
    """Lake (S3) settings pointed at the server."""
    return LakeSettings(
        s3_endpoint_url=endpoint,
        s3_region=REGION,
        s3_access_key_id=KEY_ID,
        s3_secret_access_key=SecretStr(SECRET),
    )


def kinesis_settings(endpoint: str, **fields: Any) -> KinesisSettings:
    """Kinesis settings pointed at the server."""
    return KinesisSettings(
        endpoint_url=endpoint,
        region=REGION,
        access_key_id=KEY_ID,
        secret_access_key=SecretStr(SECRET),
        **fields,
    )


def boto(service: str, endpoint: str) -> Any:
    """A boto3 client of the server."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )


def env(endpoint: str) -> dict[str, str]:
    """``FRAUDRISK_*`` variables pointing a subprocess's lake S3 and Kinesis at the server."""
    return {
        "FRAUDRISK_LAKE__S3_ENDPOINT_URL": endpoint,
        "FRAUDRISK_LAKE__S3_REGION": REGION,
        "FRAUDRISK_LAKE__S3_ACCESS_KEY_ID": KEY_ID,
        "FRAUDRISK_LAKE__S3_SECRET_ACCESS_KEY": SECRET,
        "FRAUDRISK_KINESIS__ENDPOINT_URL": endpoint,
        "FRAUDRISK_KINESIS__REGION": REGION,
        "FRAUDRISK_KINESIS__ACCESS_KEY_ID": KEY_ID,
        "FRAUDRISK_KINESIS__SECRET_ACCESS_KEY": SECRET,
    }

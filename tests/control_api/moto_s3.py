"""An S3-compatible server for tests: moto's, in server mode, on a free 127.0.0.1 port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import httpx
from moto.server import ThreadedMotoServer

from tests.support.ports import free_port

ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing-secret"


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server, running while entered, empty; its endpoint URL. moto keeps its buckets
    in the process, not in the server: a server started after another test's would hold that
    test's buckets and objects (a recording 'call-7' in 'calls') unless reset."""
    port = free_port(socket.SOCK_STREAM)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        httpx.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        yield endpoint
    finally:
        server.stop()


def make_bucket(endpoint: str, bucket: str, region: str = "us-east-1") -> None:
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    ).create_bucket(Bucket=bucket)

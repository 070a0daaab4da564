"""The scripts in examples/ work as their headers say, against the stand-in and a local S3."""

from __future__ import annotations

import sys
from pathlib import Path

import boto3
import pytest
from helpers import FakeHome, login
from standin_catalog import StandinCatalog

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BUCKET = "quilt-credproc-examples"

pytestmark = pytest.mark.consumer


@pytest.fixture
def bucket(standin: StandinCatalog, home: FakeHome, s3_endpoint: str) -> str:
    """A user logged in, with AWS tools pointed at the local S3, and a bucket with one file."""
    login(standin, home)
    home.env["AWS_ENDPOINT_URL"] = s3_endpoint  # read by botocore, the AWS CLI and the SDKs
    # Put in place by a plain client: the examples are what is under test.
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="data/hello.txt", Body=b"hello")
    # The examples call `aws` and `quilt-credproc` by name, as a user's shell would.
    home.env["PATH"] = f"{Path(sys.executable).parent}:{home.env['PATH']}"
    return BUCKET


def test_boto3_example(home: FakeHome, bucket: str) -> None:
    example = str(EXAMPLES / "boto3_list.py")
    result = home.run_program(sys.executable, example, f"s3://{bucket}/data", "--profile", "quilt")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["5", "data/hello.txt"]


def test_aws_cli_example(home: FakeHome, bucket: str) -> None:
    result = home.run_program("sh", str(EXAMPLES / "aws_cli.sh"), f"s3://{bucket}/data/", "quilt")
    assert result.returncode == 0, result.stderr
    assert "hello.txt" in result.stdout


def test_env_only_example(home: FakeHome, bucket: str, s3_endpoint: str) -> None:
    url = f"{s3_endpoint}/{bucket}/data/hello.txt"
    result = home.run_program("sh", str(EXAMPLES / "env_only.sh"), url, "quilt")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello"

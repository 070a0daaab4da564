"""Real consumers read the profile setup wrote: botocore, and the AWS CLI against local S3."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import botocore.session
import pytest
from helpers import FakeHome, login
from moto.server import ThreadedMotoServer
from standin_catalog import StandinCatalog

pytestmark = pytest.mark.consumer


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def botocore_credentials(home: FakeHome, profile: str) -> dict[str, str]:
    """Resolve the profile's credentials with botocore in a clean child process."""
    code = (
        "import botocore.session, json, sys\n"
        "session = botocore.session.Session(profile=sys.argv[1])\n"
        "c = session.get_credentials().get_frozen_credentials()\n"
        "print(json.dumps({'AccessKeyId': c.access_key, 'SessionToken': c.token}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, profile],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, str] = json.loads(result.stdout)
    return answer


def test_botocore_gets_the_helpers_credentials(standin: StandinCatalog, home: FakeHome) -> None:
    login(standin, home)
    expected = json.loads(home.run("--registry", standin.registry_url).stdout)
    got = botocore_credentials(home, "quilt")
    assert got["AccessKeyId"] == expected["AccessKeyId"]
    assert got["SessionToken"] == expected["SessionToken"]
    assert botocore.session.Session  # the same botocore the AWS CLI below uses


def aws(home: FakeHome, endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("aws", path=str(Path(sys.executable).parent)) or "aws"
    return subprocess.run(
        [executable, "--profile", "quilt", "--endpoint-url", endpoint, *args],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_aws_cli_lists_a_bucket(
    standin: StandinCatalog, home: FakeHome, s3_endpoint: str, tmp_path: Path
) -> None:
    login(standin, home)
    standin.reset_stats()
    assert aws(home, s3_endpoint, "s3", "mb", "s3://quilt-credproc-test").returncode == 0
    (tmp_path / "hello.txt").write_text("hello")
    copy = aws(
        home, s3_endpoint, "s3", "cp", str(tmp_path / "hello.txt"), "s3://quilt-credproc-test/"
    )
    assert copy.returncode == 0, copy.stderr
    listing = aws(home, s3_endpoint, "s3", "ls", "s3://quilt-credproc-test")
    assert listing.returncode == 0, listing.stderr
    assert "hello.txt" in listing.stdout
    assert standin.stats()["credentials_requests"] == 0, "served from the store"


def test_a_helper_path_with_a_space_works(
    standin: StandinCatalog, home: FakeHome, s3_endpoint: str, tmp_path: Path
) -> None:
    folder = tmp_path / "with space"
    folder.mkdir()
    helper = folder / "quilt-credproc"
    helper.write_text(
        f"#!{sys.executable}\nfrom credproc.cli import main\nraise SystemExit(main())\n"
    )
    helper.chmod(0o755)
    result = subprocess.run(
        [str(helper), "setup", "--catalog", standin.catalog_url, "--no-browser"],
        env=home.env,
        input=standin.issue_code(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f'credential_process = "{helper}" --registry' in home.aws_config.read_text()
    assert botocore_credentials(home, "quilt")["AccessKeyId"].startswith("ASIA")
    assert aws(home, s3_endpoint, "s3", "ls").returncode == 0
    assert os.access(helper, os.X_OK)

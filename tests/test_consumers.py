"""Real consumers read the profile setup wrote: botocore, the AWS CLI and the JavaScript SDK."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from filelock import FileLock
from helpers import FakeHome, login
from standin_catalog import StandinCatalog

pytestmark = pytest.mark.consumer

_TESTS = Path(__file__).resolve().parent
JS_CONSUMER = _TESTS / "js_consumer.mjs"
# Kept between runs so that only the first one waits for npm; git ignores build/.
NODE_SDK_FOLDER = _TESTS.parent / "build" / "node-sdk"
NODE_SDK_MAJOR = "3"
NODE_PACKAGES = ("@aws-sdk/credential-providers", "@aws-sdk/client-s3")
NODE_SPECS = [f"{name}@{NODE_SDK_MAJOR}" for name in NODE_PACKAGES]
NPM_TIMEOUT = 600
# npm puts packages in place one by one; this file, written last, tells a finished install
# from one cut short.
_INSTALLED_STAMP = "installed.txt"


def botocore_credentials(home: FakeHome, profile: str) -> dict[str, str]:
    """Resolve the profile's credentials with botocore in a clean child process."""
    code = (
        "import botocore.session, json, sys\n"
        "session = botocore.session.Session(profile=sys.argv[1])\n"
        "c = session.get_credentials().get_frozen_credentials()\n"
        "print(json.dumps({'AccessKeyId': c.access_key, 'SessionToken': c.token}))\n"
    )
    result = home.run_program(sys.executable, "-c", code, profile)
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
    return home.run_program(
        executable, "--profile", "quilt", "--endpoint-url", endpoint, *args, timeout=120
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


@dataclass(frozen=True)
class JavaScriptSDK:
    """The AWS SDK for JavaScript v3 in `folder`, driven through tests/js_consumer.mjs."""

    node: str
    folder: Path

    def run(self, home: FakeHome, *args: str) -> dict[str, Any]:
        """Run one js_consumer.mjs command as the fake user; the JSON it printed."""
        result = home.run_program(self.node, str(JS_CONSUMER), str(self.folder), *args)
        assert result.returncode == 0, f"node failed ({result.returncode}): {result.stderr}"
        answer: dict[str, Any] = json.loads(result.stdout)
        return answer


def _installed_major(folder: Path, package: str) -> str | None:
    try:
        manifest = json.loads((folder / "node_modules" / package / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = manifest.get("version") if isinstance(manifest, dict) else None
    return version.split(".")[0] if isinstance(version, str) else None


def _node_sdk_installed(folder: Path) -> bool:
    """Whether a finished install of the wanted packages and major version is in `folder`."""
    stamp = folder / _INSTALLED_STAMP
    if not stamp.exists() or stamp.read_text().split() != NODE_SPECS:
        return False
    return all(_installed_major(folder, name) == NODE_SDK_MAJOR for name in NODE_PACKAGES)


def _npm_install(npm: str, folder: Path) -> None:
    (folder / _INSTALLED_STAMP).unlink(missing_ok=True)
    command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(folder)]
    result = subprocess.run(
        [*command, *NODE_SPECS],
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"npm install {' '.join(NODE_SPECS)} into {folder} failed "
            f"({result.returncode}):\n{result.stderr}",
            pytrace=False,
        )
    (folder / _INSTALLED_STAMP).write_text("\n".join(NODE_SPECS) + "\n")


@pytest.fixture(scope="session")
def js_sdk() -> JavaScriptSDK:
    """The JavaScript SDK, installed from the npm registry on first use and kept under build/."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
        pytest.fail(
            f"the JavaScript SDK tests need Node.js and npm; {missing} could not be found on "
            f"PATH: install Node.js 20 or newer (the SDK's major version {NODE_SDK_MAJOR} asks it)",
            pytrace=False,
        )
    NODE_SDK_FOLDER.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers reach this together: one installs, the others wait and find it done.
    with FileLock(str(NODE_SDK_FOLDER / "install.lock"), timeout=2 * NPM_TIMEOUT):
        if not _node_sdk_installed(NODE_SDK_FOLDER):
            _npm_install(npm, NODE_SDK_FOLDER)
    return JavaScriptSDK(node, NODE_SDK_FOLDER)


def _instant(text: str) -> datetime:
    # Python 3.9's fromisoformat does not read a "Z" suffix.
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_javascript_sdk_gets_the_helpers_credentials(
    standin: StandinCatalog, home: FakeHome, js_sdk: JavaScriptSDK
) -> None:
    login(standin, home)
    expected = json.loads(home.run("--registry", standin.registry_url).stdout)
    got = js_sdk.run(home, "credentials", "quilt")
    assert got["accessKeyId"] == expected["AccessKeyId"]
    assert got["secretAccessKey"] == expected["SecretAccessKey"]
    assert got["sessionToken"] == expected["SessionToken"]
    assert _instant(got["expiration"]) == _instant(expected["Expiration"])


def test_the_javascript_s3_client_lists_a_bucket(
    standin: StandinCatalog, home: FakeHome, s3_endpoint: str, js_sdk: JavaScriptSDK
) -> None:
    login(standin, home)
    standin.reset_stats()
    got = js_sdk.run(home, "s3", "quilt", s3_endpoint, "quilt-credproc-js", "hello.txt")
    assert got["keys"] == ["hello.txt"]
    assert standin.stats()["credentials_requests"] == 0, "served from the store"


@pytest.fixture(
    params=["with space", "it's", 'say "hi"', "back\\slash", "$HOME", "a&b (c)"],
    ids=["space", "apostrophe", "double-quote", "backslash", "dollar", "shell-characters"],
)
def odd_helper(
    request: pytest.FixtureRequest, standin: StandinCatalog, home: FakeHome, tmp_path: Path
) -> Path:
    """A login set up through a launcher in a folder whose name a shell would take apart."""
    folder = tmp_path / request.param
    folder.mkdir()
    helper = folder / "quilt-credproc"
    helper.write_text(
        f"#!{sys.executable}\nfrom credproc.cli import main\nraise SystemExit(main())\n"
    )
    helper.chmod(0o755)
    result = home.run_program(
        str(helper),
        "setup",
        "--catalog",
        standin.catalog_url,
        "--no-browser",
        input=standin.issue_code(),
    )
    assert result.returncode == 0, result.stderr
    if " " in folder.name and '"' not in folder.name and "$" not in folder.name:
        assert f'credential_process = "{helper}" --registry' in home.aws_config.read_text()
    return helper


@pytest.mark.usefixtures("odd_helper")
def test_an_odd_helper_path_works(home: FakeHome, s3_endpoint: str) -> None:
    assert botocore_credentials(home, "quilt")["AccessKeyId"].startswith("ASIA")
    assert aws(home, s3_endpoint, "s3", "ls").returncode == 0


@pytest.mark.usefixtures("odd_helper")
def test_an_odd_helper_path_works_from_javascript(home: FakeHome, js_sdk: JavaScriptSDK) -> None:
    assert js_sdk.run(home, "credentials", "quilt")["accessKeyId"].startswith("ASIA")

"""The main job end to end, on this machine only.

Starts the bundled stand-in Quilt catalog and a local S3 (moto's server) on 127.0.0.1, logs in
with `quilt-credproc setup` (the code is piped in, as a script would), then lists a bucket with
the AWS CLI through the profile that setup wrote. Your own ~/.aws is never touched: everything
lives in a temporary home folder that is removed at the end.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from moto.server import ThreadedMotoServer
from standin_catalog import StandinCatalog

BIN = Path(sys.executable).parent
BUCKET = "quilt-demo-bucket"


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def run(command: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    shown = " ".join("CODE" if stdin and word == stdin else word for word in command)
    print(f"$ {shown}", flush=True)
    result = subprocess.run(
        command, env=env, input=stdin, text=True, capture_output=True, timeout=120, check=False
    )
    sys.stdout.write(result.stdout)
    sys.stdout.write("".join(f"  (stderr) {line}\n" for line in result.stderr.splitlines()))
    if result.returncode != 0:
        raise SystemExit(f"demo failed: {command[0]} exited {result.returncode}")
    return result.stdout


def sandbox_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "QUILT_"))}
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        AWS_CONFIG_FILE=str(home / ".aws" / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / ".aws" / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request lines
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    s3.start()
    host, port = s3.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with StandinCatalog().start() as catalog, tempfile.TemporaryDirectory() as tmp:
        env = sandbox_env(Path(tmp))
        step(f"A stand-in Quilt catalog runs at {catalog.catalog_url}; local S3 at {endpoint}")
        step("Log in once (the code is what the catalog's /code page shows)")
        run(
            [
                str(BIN / "quilt-credproc"),
                "setup",
                "--catalog",
                catalog.catalog_url,
                "--no-browser",
            ],
            env,
            stdin=catalog.issue_code(),
        )
        step("The profile setup wrote")
        print(Path(env["AWS_CONFIG_FILE"]).read_text(), end="")
        step("Any AWS tool now acts with the catalog's credentials")
        aws = [str(BIN / "aws"), "--profile", "quilt", "--endpoint-url", endpoint]
        run([*aws, "s3", "mb", f"s3://{BUCKET}"], env)
        run([*aws, "s3", "cp", __file__, f"s3://{BUCKET}/demo.py"], env)
        listing = run([*aws, "s3", "ls", f"s3://{BUCKET}"], env)
        stats = catalog.stats()
        step(
            f"Registry calls: {stats['token_requests']} token, "
            f"{stats['credentials_requests']} credentials (both by setup); the AWS CLI's "
            "three commands were served from the stored credentials"
        )
    s3.stop()
    if "demo.py" not in listing:
        raise SystemExit("demo failed: the bucket listing does not show demo.py")
    print("\nDemo passed: aws --profile quilt s3 ls listed the bucket.")


if __name__ == "__main__":
    main()

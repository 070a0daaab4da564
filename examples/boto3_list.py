"""List what a bucket holds with boto3, through the profile `quilt-credproc setup` wrote.

    python examples/boto3_list.py s3://my-quilt-bucket/some/prefix --profile quilt

boto3 runs quilt-credproc by itself whenever it needs credentials, and again shortly before they
expire, so a long-running program never logs in twice. Nothing here is specific to Quilt: any
boto3 code works once the session names the profile (or AWS_PROFILE does).
"""

from __future__ import annotations

import argparse
from urllib.parse import urlsplit

import boto3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="s3://bucket[/prefix]")
    parser.add_argument("--profile", default="quilt")
    args = parser.parse_args()
    where = urlsplit(args.url)
    session = boto3.Session(profile_name=args.profile)
    s3 = session.client("s3")
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=where.netloc, Prefix=where.path.lstrip("/")
    )
    for page in pages:
        for item in page.get("Contents", []):
            print(f"{item['Size']:>12}  {item['Key']}")


if __name__ == "__main__":
    main()

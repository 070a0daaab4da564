#!/bin/sh
# The AWS CLI through the profile `quilt-credproc setup` wrote: nothing else to configure.
#
#     sh examples/aws_cli.sh s3://my-quilt-bucket/ [profile]
#
# Each `aws` command starts quilt-credproc, which answers from its store at the cost of an
# interpreter start and renews the credentials by itself when they are due.
set -eu
url=${1:?usage: aws_cli.sh s3://bucket/ [profile]}
profile=${2:-quilt}

aws --profile "$profile" sts get-caller-identity --output text
aws --profile "$profile" s3 ls "$url"

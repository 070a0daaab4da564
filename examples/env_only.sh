#!/bin/sh
# A tool that reads no AWS profile, only AWS_* environment variables: here curl, which signs an
# S3 request itself. `quilt-credproc exec` runs it with the profile's credentials set.
#
#     sh examples/env_only.sh https://my-quilt-bucket.s3.us-east-1.amazonaws.com/ [profile]
#
# The variables do not renew themselves: a command that outlives them must be run again.
set -eu
url=${1:?usage: env_only.sh BUCKET-URL [profile]}
profile=${2:-quilt}

# shellcheck disable=SC2016  # the inner shell expands the variables exec sets
quilt-credproc exec --profile "$profile" -- sh -c '
    set -u  # each of these must have been set by exec
    curl --silent --show-error --fail \
        --aws-sigv4 "aws:amz:${AWS_REGION:-us-east-1}:s3" \
        --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
        --header "x-amz-security-token: $AWS_SESSION_TOKEN" \
        "$1"
' sh "$url"

"""Where the API is: the stack's outputs on AWS (what `cdk deploy` prints and the CLI's `--api`
takes), and the local stack's fixed region, account, caller and port."""

from __future__ import annotations

OUTPUT_API_URL = "ApiUrl"
OUTPUT_BUCKET = "ArtifactsBucketName"
OUTPUT_TABLE = "JobsTableName"

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"
LOCAL_OWNER = "local-user"  # the one fixed caller identity of the local stack
DEFAULT_LOCAL_PORT = 8000
ENV_LOCAL_PORT = "OPENCOMPOSER_PORT"

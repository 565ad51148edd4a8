"""The CDK app: `make synth` (`.venv/bin/python infra/app.py`), or the cdk CLI via cdk.json."""

from __future__ import annotations

import os
import sys
from typing import Any

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # Node 20 here
import aws_cdk as cdk  # noqa: E402

from infra import nag  # noqa: E402
from infra.components.paths import REPO_ROOT  # noqa: E402
from infra.stack import STACK_NAME, OpenComposerStack  # noqa: E402

CONTEXT = {
    # Run by `cdk deploy`, the CLI sets this to the stacks being deployed and the Lambda asset
    # is built; run directly (make synth, tests), nothing is bundled (the asset is a plain copy
    # of its packages), so synth is offline.
    "aws:cdk:bundling-stacks": [],
    # Server access logs delivered under a bucket policy, not the legacy log-delivery ACL.
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
}


def build(**app_props: Any) -> tuple[cdk.App, OpenComposerStack]:
    """The app with cdk-nag's AwsSolutions checks attached: synth fails on any finding not
    acknowledged in infra/nag.py."""
    app_props["context"] = {**CONTEXT, **app_props.get("context", {})}
    if "CDK_OUTDIR" not in os.environ:  # the CLI chooses its own output folder
        app_props.setdefault("outdir", str(REPO_ROOT / "cdk.out"))
    app = cdk.App(**app_props)
    stack = OpenComposerStack(app, STACK_NAME)
    cdk.Tags.of(app).add("project", "opencomposer")
    nag.check(app, stack)
    return app, stack


def main() -> None:
    app, stack = build()
    assembly = app.synth()
    template = assembly.get_stack_artifact(stack.artifact_id).template_full_path
    print(f"synthesised {stack.stack_name}: {template}", file=sys.stderr)


if __name__ == "__main__":
    main()

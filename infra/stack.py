"""The opencomposer stack: one construct per concern, wired together by keyword arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from contracts import deployment
from infra.components.api import Api
from infra.components.artifacts_bucket import ArtifactsBucket
from infra.components.execution_finaliser import ExecutionFinaliser
from infra.components.functions import handlers_code
from infra.components.jobs_table import JobsTable
from infra.components.paths import STATE_MACHINE_DEFINITION
from infra.components.stream_trigger import StreamTrigger
from infra.components.training import Training
from infra.components.workflow import Workflow

STACK_NAME = "OpenComposer"


class OpenComposerStack(Stack):
    def __init__(self, scope: Construct, id: str = STACK_NAME, *,
                 definition_path: Path = STATE_MACHINE_DEFINITION, **kwargs: Any) -> None:
        super().__init__(scope, id, description="opencomposer: music GAN training jobs on SageMaker "
                                                "behind an IAM-authorised REST API", **kwargs)
        self.artifacts = ArtifactsBucket(self, "Artifacts")
        self.jobs = JobsTable(self, "Jobs")
        bucket, table = self.artifacts.bucket, self.jobs.table
        self.training = Training(self, "Training", bucket=bucket, table=table)
        self.workflow = Workflow(
            self, "Workflow",
            definition_path=definition_path,
            table=table,
            training=self.training,
            substitutions={
                "JobsTable": lambda: table.table_name,
                "ArtifactsBucket": lambda: bucket.bucket_name,
                **self.training.substitutions(),
            },
        )
        code = handlers_code(self)
        self.stream_trigger = StreamTrigger(self, "StreamTrigger", code=code, table=table, bucket=bucket,
                                            state_machine=self.workflow.state_machine)
        self.finaliser = ExecutionFinaliser(self, "Finaliser", code=code, table=table,
                                            state_machine=self.workflow.state_machine)
        self.api = Api(self, "Api", code=code, table=table, bucket=bucket,
                       training_job_arn_pattern=self.training.job_arn_pattern)

        CfnOutput(self, deployment.OUTPUT_API_URL, value=self.api.rest_api.url,
                  description="Base URL of the jobs API: opencomposer --api <this URL> ...")
        CfnOutput(self, deployment.OUTPUT_BUCKET, value=bucket.bucket_name,
                  description="Artifacts bucket: jobs/<job_id>/ holds each job's MIDI and model")
        CfnOutput(self, deployment.OUTPUT_TABLE, value=table.table_name, description="Jobs table")

"""The HTTP API: a REST API Gateway with IAM (SigV4) authorization on every route, throttled and
access-logged, in front of the functions that serve the routes (`contracts.routes`): the api
Lambda, and the compose Lambda (a container image with PyTorch) for the routes that run a model."""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from contracts import datasets, functions, routes, storage
from infra.components.datasets import DatasetBuilder, every_dataset
from infra.components.functions import LOG_RETENTION, ImageFunction, PythonFunction

STAGE = "v1"
# Steady requests per second and burst for the whole stage: one team's polling clients, with
# room to spare, while a runaway script cannot run up the Lambda and DynamoDB bill.
THROTTLE_RATE = 50
THROTTLE_BURST = 100
# API Gateway's own errors (denied signature, throttling, body over its 10 MB limit) in the
# API's error shape, {"error": {"code", "message"}}, like every error the handler returns.
GATEWAY_ERROR_TEMPLATE = (
    '{"error": {"code": "$context.error.responseType", "message": $context.error.messageString}}'
)


class Api(Construct):
    def __init__(self, scope: Construct, id: str, *, code: lambda_.Code, table: dynamodb.ITable,
                 bucket: s3.IBucket, training_job_arn_pattern: str) -> None:
        super().__init__(scope, id)
        # Both functions read the table and the bucket (contracts.functions: API, COMPOSE).
        environment = {
            functions.ENV_TABLE: table.table_name,
            functions.ENV_BUCKET: bucket.bucket_name,
        }
        self.handler = PythonFunction(self, "Handler", spec=functions.API, code=code, environment=environment)
        self._grant_api(self.handler.function, table, bucket, training_job_arn_pattern)
        self.compose = ImageFunction(self, "Compose", spec=functions.COMPOSE, environment=environment)
        self._grant_compose(self.compose.function, table, bucket)
        # The /datasets routes' other half: the build each upload starts.
        self.datasets = DatasetBuilder(self, "Datasets", table=table, bucket=bucket)
        # Each route's function (`Route.function`, a contracts.functions key) → its construct.
        self.functions = {functions.API.key: self.handler, functions.COMPOSE.key: self.compose}

        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=LOG_RETENTION,
                                         removal_policy=RemovalPolicy.DESTROY)
        self.rest_api = apigw.RestApi(
            self, "RestApi",
            description="opencomposer jobs API (SigV4-signed requests)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,  # execution logs need the account's API Gateway logging role
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=THROTTLE_RATE,
                throttling_burst_limit=THROTTLE_BURST,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                tracing_enabled=True,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=True),
            ),
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
        )
        # The stack's own ApiUrl output replaces the construct's generated one.
        self.rest_api.node.try_remove_child("Endpoint")
        # One proxy integration per function; each method gets the one its route names (and
        # with it the permission for API Gateway to invoke that function from that method).
        integrations = {key: apigw.LambdaIntegration(construct.function)
                        for key, construct in self.functions.items()}
        for path, methods in routes.resources().items():
            resource = self.rest_api.root.resource_for_path(path)
            for method in methods:
                resource.add_method(method, integrations[routes.function_for(method, path)])
        for response_type in (apigw.ResponseType.DEFAULT_4_XX, apigw.ResponseType.DEFAULT_5_XX):
            self.rest_api.add_gateway_response(
                f"Gateway{response_type.response_type}", type=response_type,
                templates={"application/json": GATEWAY_ERROR_TEMPLATE})

    @staticmethod
    def _grant_api(fn: lambda_.IFunction, table: dynamodb.ITable, bucket: s3.IBucket,
                   training_job_arn_pattern: str) -> None:
        """Exactly what lambdas/common/dal/ calls for the api's routes."""
        # Jobs, epochs, compositions and idempotency items; the by-owner index for GET /jobs;
        # BatchWriteItem and DeleteItem for DELETE /jobs/{id} and DELETE .../compositions/{id}.
        iam.Grant.add_to_principal(
            grantee=fn,
            actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                     "dynamodb:BatchWriteItem", "dynamodb:Query"],
            resource_arns=[table.table_arn])
        iam.Grant.add_to_principal(
            grantee=fn, actions=["dynamodb:Query"],
            resource_arns=[f"{table.table_arn}/index/{storage.OWNER_INDEX}"])
        # The melody in on POST; presigned GETs of the training's MIDI and samples, of the users'
        # compositions and of the model (GET .../compositions, GET .../model); DELETE of a job's
        # prefix and of one composition's MIDI.
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:PutObject"],
                                   resource_arns=[bucket.arn_for_objects(f"{storage.JOBS_PREFIX}*/input/*")])
        iam.Grant.add_to_principal(
            grantee=fn, actions=["s3:GetObject"],
            resource_arns=[*(bucket.arn_for_objects(f"{storage.JOBS_PREFIX}*/{folder}/*")
                             for folder in ("compositions", "samples")),
                           *(every_job(bucket, folder) for folder in (storage.composed_prefix,
                                                                      storage.model_output_prefix))])
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:DeleteObject"],
                                   resource_arns=[bucket.arn_for_objects(f"{storage.JOBS_PREFIX}*")])
        fn.add_to_role_policy(iam.PolicyStatement(
            actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{storage.JOBS_PREFIX}*"]}}))
        # POST /jobs/{id}/stop
        iam.Grant.add_to_principal(grantee=fn, actions=["sagemaker:StopTrainingJob"],
                                   resource_arns=[training_job_arn_pattern])
        # The /datasets routes: GET /datasets's index; POST /datasets presigns the upload (S3
        # authorizes the user's POST as the signer: PutObject of that one key), GET
        # /datasets/{id} the report; DELETE lists and deletes a dataset's prefix.
        iam.Grant.add_to_principal(
            grantee=fn, actions=["dynamodb:Query"],
            resource_arns=[f"{table.table_arn}/index/{datasets.DATASET_OWNER_INDEX}"])
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:PutObject"],
                                   resource_arns=[bucket.arn_for_objects(every_dataset("upload_key"))])
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:GetObject"],
                                   resource_arns=[bucket.arn_for_objects(every_dataset("report_key"))])
        # POST /jobs counts what a job's `tags` leave of a user's dataset from its index.
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:GetObject"],
                                   resource_arns=[bucket.arn_for_objects(every_dataset("index_key"))])
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:DeleteObject"],
                                   resource_arns=[bucket.arn_for_objects(f"{datasets.DATASETS_PREFIX}*")])
        fn.add_to_role_policy(iam.PolicyStatement(
            actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{datasets.DATASETS_PREFIX}*"]}}))

    @staticmethod
    def _grant_compose(fn: lambda_.IFunction, table: dynamodb.ITable, bucket: s3.IBucket) -> None:
        """Exactly what POST /jobs/{id}/compositions calls: read the job and count its
        compositions; one transaction (a condition check on the job item, the put of the
        composition item); the model in; the composition's MIDI out, presigned, and removed
        again when its item cannot be kept. Nothing of the melody, samples or training MIDI."""
        iam.Grant.add_to_principal(
            grantee=fn,
            actions=["dynamodb:GetItem", "dynamodb:Query", "dynamodb:ConditionCheckItem", "dynamodb:PutItem"],
            resource_arns=[table.table_arn])
        composed = every_job(bucket, storage.composed_prefix)
        iam.Grant.add_to_principal(
            grantee=fn, actions=["s3:GetObject"],
            resource_arns=[every_job(bucket, storage.model_output_prefix), composed])
        iam.Grant.add_to_principal(grantee=fn, actions=["s3:PutObject", "s3:DeleteObject"],
                                   resource_arns=[composed])


def every_job(bucket: s3.IBucket, folder: Callable[[str], str]) -> str:
    """The objects under one per-job folder of every job: `folder` is `storage`'s function of a
    job id (`storage.composed_prefix`), given `*` for the id."""
    return bucket.arn_for_objects(f"{folder('*')}*")

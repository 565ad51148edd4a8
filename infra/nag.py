"""cdk-nag (AwsSolutions) on the app, and every finding this stack accepts, with its reason.

cdk-nag v3 acknowledges one finding at a time (`RuleId[finding]`) on a construct and its
children; a new finding fails synth until it is fixed or acknowledged here.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, App, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

from contracts import datasets, functions, storage
from infra.components.training import SAGEMAKER_LOG_GROUP
from infra.stack import OpenComposerStack

# Why each IAM statement on Resource "*" cannot be narrower (the infra tests check that these
# are the only actions granted on "*").
_NO_XRAY_RESOURCES = "X-Ray has no resource-level permissions: trace segments are written account-wide"
_NO_DELIVERY_RESOURCES = "CloudWatch Logs vended log delivery has no resource-level permissions"
STAR_RESOURCE_REASONS = {
    "xray:PutTraceSegments": _NO_XRAY_RESOURCES,
    "xray:PutTelemetryRecords": _NO_XRAY_RESOURCES,
    "xray:GetSamplingRules": _NO_XRAY_RESOURCES,
    "xray:GetSamplingTargets": _NO_XRAY_RESOURCES,
    "logs:CreateLogDelivery": _NO_DELIVERY_RESOURCES,
    "logs:GetLogDelivery": _NO_DELIVERY_RESOURCES,
    "logs:UpdateLogDelivery": _NO_DELIVERY_RESOURCES,
    "logs:DeleteLogDelivery": _NO_DELIVERY_RESOURCES,
    "logs:ListLogDeliveries": _NO_DELIVERY_RESOURCES,
    "logs:PutResourcePolicy": "Step Functions log delivery sets the log group resource policy; "
                              "the action takes no resource",
    "logs:DescribeResourcePolicies": "the action takes no resource",
    "logs:DescribeLogGroups": "the action takes no resource (Step Functions checks its log destination)",
    "dynamodb:ListStreams": "the action takes no resource (Lambda's stream event source calls it)",
    "ecr:GetAuthorizationToken": "ECR's registry login has no resource; pulls are limited to the "
                                 "training image's repository",
    "sagemaker:ListTags": "AWS's published IAM policy for the Step Functions createTrainingJob.sync "
                          "integration grants it on '*', in a statement of its own apart from the job "
                          "actions (Step Functions developer guide, IAM policies for Amazon SageMaker AI); "
                          "it only reads tags",
    "cloudwatch:PutMetricData": f"CloudWatch metrics have no resource type; limited by condition to "
                                f"the {SAGEMAKER_LOG_GROUP} namespace",
}
_XRAY = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")


def _star_reason(*actions: str) -> str:
    """The reasons of STAR_RESOURCE_REASONS for these actions, each reason said once."""
    by_reason: dict[str, list[str]] = {}
    for action in actions:
        by_reason.setdefault(STAR_RESOURCE_REASONS[action], []).append(action)
    return "; ".join(f"{', '.join(names)}: {reason}" for reason, names in by_reason.items())


def check(app: App, stack: OpenComposerStack) -> None:
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    acknowledge(stack)


def acknowledge(stack: OpenComposerStack) -> None:
    bucket = _nag_text(stack, stack.artifacts.bucket.bucket_arn)
    jobs = f"{bucket}/{storage.JOBS_PREFIX}*"
    job_names = _nag_text(stack, stack.training.job_arn_pattern)
    per_job = ("job ids are made at run time, so the job-scoped resources are a pattern under the "
               "stack's own prefix")
    training, workflow = stack.training, stack.workflow
    api, stream = stack.api, stack.stream_trigger
    finaliser = stack.finaliser

    # --- Resource "*": only actions that have no narrower resource (STAR_RESOURCE_REASONS).
    star = "AwsSolutions-IAM5[Resource::*]"
    _ack(training.role, star, _star_reason("ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"))
    _ack(workflow.state_machine.role, star, _star_reason(
        "sagemaker:ListTags",
        *(a for a in STAR_RESOURCE_REASONS if a.startswith("logs:")),
        *(a for a in STAR_RESOURCE_REASONS if a.startswith("xray:"))))
    _ack(api.handler.role, star, _star_reason(*_XRAY))
    _ack(api.compose.role, star, _star_reason(*_XRAY))
    _ack(stream.handler.role, star, _star_reason(*_XRAY, "dynamodb:ListStreams"))
    _ack(stream.redrive.role, star, _star_reason(*_XRAY))
    _ack(finaliser.handler.role, star, _star_reason(*_XRAY))

    # --- Per-job patterns.
    for folder, why in (("input", "the melody channel SageMaker downloads; the api writes it"),
                        ("samples", f"per-epoch sample MIDI (tagged {storage.SAMPLE_TAG_KEY}): "
                                    "the container writes them, the api presigns them"),
                        ("compositions", "final MIDI: the container writes it, the api presigns it")):
        for construct in (training.role, api.handler.role):
            _ack(construct, f"AwsSolutions-IAM5[Resource::{jobs}/{folder}/*]", f"{why}; {per_job}")
    _ack(training.role, f"AwsSolutions-IAM5[Resource::{jobs}/model/*]",
         f"SageMaker uploads the model under the job's S3OutputPath; {per_job}")
    model, composed = (f"{bucket}/{folder('*')}*" for folder in (storage.model_output_prefix,
                                                                 storage.composed_prefix))
    _ack(api.handler.role, f"AwsSolutions-IAM5[Resource::{model}]",
         f"GET /jobs/{{id}}/model presigns the job's model.tar.gz (GetObject only); {per_job}")
    _ack(api.compose.role, f"AwsSolutions-IAM5[Resource::{model}]",
         f"the compose function reads the job's model.tar.gz to run its generator (GetObject only); "
         f"{per_job}")
    _ack(api.handler.role, f"AwsSolutions-IAM5[Resource::{composed}]",
         f"GET /jobs/{{id}}/compositions presigns the users' compositions (GetObject only); {per_job}")
    _ack(api.compose.role, f"AwsSolutions-IAM5[Resource::{composed}]",
         f"the compose function writes each new composition's MIDI there, presigns it, and removes it "
         f"when its item cannot be kept; {per_job}")
    _ack(training.role, f"AwsSolutions-IAM5[Resource::{jobs}/checkpoints/*]",
         f"managed spot checkpoints, written and read back on resume; {per_job}")
    _ack(api.handler.role, f"AwsSolutions-IAM5[Resource::{jobs}]",
         f"DELETE /jobs/{{id}} removes every object under the job's prefix (DeleteObject only); {per_job}")
    job_callers: tuple[IConstruct, ...] = (workflow.state_machine.role, api.handler.role)
    for caller in job_callers:
        _ack(caller, f"AwsSolutions-IAM5[Resource::{job_names}]",
             "training jobs are named <stack name in lower case>-<job id> (lower case, as SageMaker "
             "reports its ARNs): the pattern admits this stack's jobs only")
    _ack(training.role, f"AwsSolutions-IAM5[Resource::{_nag_text(stack, training.log_group_arn)}]",
         "SageMaker's fixed log group for every training job (its ARN form ends in :*)")
    _ack(training.role, f"AwsSolutions-IAM5[Resource::{_nag_text(stack, training.log_streams_arn)}]",
         "log streams are named after the training job: this stack's jobs only")

    _ack(finaliser.handler.role,
         f"AwsSolutions-IAM5[Resource::{_nag_text(stack, finaliser.executions_arn)}]",
         "DescribeExecution (only) on the executions of this stack's state machine, whose names are "
         "job ids made at run time: the finaliser reads the error and cause of the execution an "
         "event names")

    _acknowledge_datasets(stack, bucket)

    # --- Other rules.
    _ack(finaliser.unsettled, "AwsSolutions-SQS3",
         "this queue is itself the dead-letter queue of the finaliser (its asynchronous invocations' "
         "on-failure destination and its EventBridge target's dead-letter queue); its alarm calls an "
         "operator")
    for fn in (api.handler, stream.handler, stream.redrive, finaliser.handler):
        _ack(fn.function, "AwsSolutions-L1",
             f"{functions.RUNTIME} on purpose: every function and the Lambda asset's wheels take it from "
             "the one constant contracts.functions.RUNTIME, and the handlers are tested on CPython "
             "3.11/3.12; AWS supports it until 2028. Bump it after testing on a newer Python.")
    _ack(api.rest_api, "AwsSolutions-APIG2",
         "the api handler validates every request with pydantic and answers 400 naming the field in "
         "the API's error shape; an API Gateway validator would answer in another shape and duplicate "
         "the rules")
    _ack(api.rest_api, "AwsSolutions-COG4",
         "every method uses IAM (SigV4) authorization, the API's design: callers are the account's "
         "IAM principals and each job belongs to its caller's ARN; no user pool to run")
    _ack(api.rest_api, "AwsSolutions-APIG3",
         "no WAF web ACL: callers must sign with the account's IAM credentials, the stage is "
         "throttled, and the handler rejects bodies over 1 MiB; a web ACL costs a fixed monthly fee "
         "per deployment. Associate one with the stage if the API is opened to more callers.")
    _ack(api.rest_api, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                       "AmazonAPIGatewayPushToCloudWatchLogs]",
         "the account-level role API Gateway uses to write execution logs; AWS's managed policy for "
         "exactly this role only writes logs")


def _acknowledge_datasets(stack: OpenComposerStack, bucket: str) -> None:
    """Datasets (contracts/datasets.py; infra/components/datasets.py): ids made at run time."""
    api, builder = stack.api.handler, stack.api.datasets.builder
    per_dataset = ("dataset ids are made at run time, so the dataset-scoped resources are a pattern "
                   "over the contract's layout")
    upload, report = (f"{bucket}/{key('*')}" for key in (datasets.upload_key, datasets.report_key))
    _ack(builder.role, "AwsSolutions-IAM5[Resource::*]", _star_reason(*_XRAY))
    _ack(builder.role, f"AwsSolutions-IAM5[Resource::{upload}]",
         f"the build reads the uploaded zip, then deletes it; {per_dataset}")
    _ack(builder.role, f"AwsSolutions-IAM5[Resource::{bucket}/{datasets.built_prefix('*')}*]",
         f"the build writes the dataset's pieces and index there; {per_dataset}")
    _ack(stack.training.role, f"AwsSolutions-IAM5[Resource::{bucket}/{datasets.built_prefix('*')}*]",
         f"SageMaker downloads a job's `dataset` channel (the built pieces; GetObject only) as the "
         f"training role; {per_dataset}")
    _ack(builder.role, f"AwsSolutions-IAM5[Resource::{report}]",
         f"the build writes the dataset's report; {per_dataset}")
    _ack(api.role, f"AwsSolutions-IAM5[Resource::{upload}]",
         f"POST /datasets presigns the upload of exactly this key (S3 authorizes the user's POST as "
         f"the signer); {per_dataset}")
    _ack(api.role, f"AwsSolutions-IAM5[Resource::{report}]",
         f"GET /datasets/{{id}} presigns the report (GetObject only); {per_dataset}")
    _ack(api.role, f"AwsSolutions-IAM5[Resource::{bucket}/{datasets.index_key('*')}]",
         f"POST /jobs reads a dataset's index to count what the job's tags leave (GetObject only); "
         f"{per_dataset}")
    _ack(api.role, f"AwsSolutions-IAM5[Resource::{bucket}/{datasets.DATASETS_PREFIX}*]",
         f"DELETE /datasets/{{id}} removes every object under the dataset's prefix (DeleteObject only); "
         f"{per_dataset}")
    # CDK's own singleton function that writes the bucket's notification configuration
    # (add_event_notification): CloudFormation cannot, without a dependency cycle between the
    # bucket and the function's permission.
    for child in stack.node.children:
        if child.node.id.startswith("BucketNotificationsHandler"):
            _ack(child, "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                        "AWSLambdaBasicExecutionRole]",
                 "CDK's bucket-notifications handler (add_event_notification) comes with AWS's managed "
                 "policy that only writes its own logs")


def _ack(construct: IConstruct, rule: str, reason: str) -> None:
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def render(value: Any) -> str:
    """A CloudFormation value as text, as cdk-nag writes it in finding ids: <Logical.Attr> for
    GetAtt, <Name> for Ref (<AWS::Region>), joins flattened, a Sub's template as it stands."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(render(v) for v in value)
    ((function, argument),) = value.items()
    if function == "Ref":
        return f"<{argument}>"
    if function == "Fn::GetAtt":
        return f"<{argument[0]}.{argument[1]}>"
    if function == "Fn::Join":
        return str(argument[0]).join(render(v) for v in argument[1])
    if function == "Fn::Sub":
        return argument if isinstance(argument, str) else str(argument[0])
    raise ValueError(f"cannot render {value!r} as text")


def _nag_text(stack: Stack, token: str) -> str:
    return render(stack.resolve(token))

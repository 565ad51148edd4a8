"""The stream trigger: the stream Lambda started by the INSERT of a job item, which starts the
job's execution; what it cannot process ends in a dead-letter queue, never silently dropped."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.components.functions import PythonFunction
from lambdas.common import settings

# A stream keeps records 24 hours; a record older than this has missed its moment anyway and
# goes to the queue, where an operator sees it (alarm below).
MAX_RECORD_AGE = Duration.hours(6)
MAX_RETRIES = 3


class StreamTrigger(Construct):
    def __init__(self, scope: Construct, id: str, *, code: lambda_.Code, table: dynamodb.ITable,
                 state_machine: sfn.IStateMachine) -> None:
        super().__init__(scope, id)
        self.handler = PythonFunction(
            self, "Handler",
            code=code,
            handler=settings.STREAM_HANDLER,
            environment={
                settings.ENV_STATE_MACHINE_ARN: state_machine.state_machine_arn,
                settings.ENV_TABLE: table.table_name,
            },
            description="opencomposer stream: starts a training execution per new job",
            timeout=Duration.seconds(60),
            memory_size=256,
        )
        state_machine.grant_start_execution(self.handler.function)
        # A job whose execution can never start is ended FAILED (a conditional update).
        iam.Grant.add_to_principal(grantee=self.handler.function, actions=["dynamodb:UpdateItem"],
                                   resource_arns=[table.table_arn])

        # The on-failure destination receives the failed batch's shard and sequence numbers.
        self.dead_letters = sqs.Queue(
            self, "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.handler.function.add_event_source(sources.DynamoEventSource(
            table,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=10,
            filters=[lambda_.FilterCriteria.filter(settings.STREAM_FILTER_PATTERN)],
            report_batch_item_failures=True,
            bisect_batch_on_error=True,
            retry_attempts=MAX_RETRIES,
            max_record_age=MAX_RECORD_AGE,
            on_failure=sources.SqsDlq(self.dead_letters),
        ))
        self.dead_letter_alarm = cloudwatch.Alarm(
            self, "DeadLettersAlarm",
            alarm_description="A job INSERT could not start its training execution: see the "
                              "stream handler's log and the queue's message for the record",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5)),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

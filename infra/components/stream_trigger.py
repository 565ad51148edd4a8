"""The stream trigger: the stream Lambda started by the INSERT of a job item, which starts the
job's execution, and its failure path. A batch the event source gives up on goes to a dead-letter
queue, whose redrive Lambda reads the batch back from the stream and starts each job once more or
ends it FAILED; a message even the redrive cannot settle moves to the queue's own dead-letter
queue, which raises the alarm. Nothing is silently dropped and no job stays SUBMITTED."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from contracts import functions, storage
from infra.components.functions import PythonFunction

# A stream keeps records 24 hours; a record older than this has missed its moment anyway and
# goes to the queue, whose redrive still has 18 hours to read it back.
MAX_RECORD_AGE = Duration.hours(6)
MAX_RETRIES = 3
# Receives of a dead letter before it moves on to the unsettled queue: a few redrive attempts
# (each after the visibility timeout) ride out a passing DynamoDB or Streams error.
REDRIVE_MAX_RECEIVES = 5


class StreamTrigger(Construct):
    def __init__(self, scope: Construct, id: str, *, code: lambda_.Code, table: dynamodb.ITable,
                 bucket: s3.IBucket, state_machine: sfn.IStateMachine) -> None:
        super().__init__(scope, id)
        # The values of the variables both specs name (each function starts executions).
        environment = {
            functions.ENV_STATE_MACHINE_ARN: state_machine.state_machine_arn,
            functions.ENV_TABLE: table.table_name,
            functions.ENV_BUCKET: bucket.bucket_name,  # only named in the input channels' URIs
        }
        self.handler = PythonFunction(self, "Handler", spec=functions.STREAM, code=code,
                                      environment=environment)
        state_machine.grant_start_execution(self.handler.function)
        # A job whose execution can never start is ended FAILED (a conditional update).
        iam.Grant.add_to_principal(grantee=self.handler.function, actions=["dynamodb:UpdateItem"],
                                   resource_arns=[table.table_arn])

        # Messages even the redrive could not settle (records gone from the stream, a DynamoDB
        # error outlasting every receive): what an operator must look at.
        self.unsettled = sqs.Queue(
            self, "Unsettled",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        # The on-failure destination receives the failed batch's shard and sequence numbers.
        self.dead_letters = sqs.Queue(
            self, "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            # AWS's advice for a Lambda-polled queue: six times the function's timeout.
            visibility_timeout=Duration.seconds(6 * functions.REDRIVE.timeout_s),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.unsettled,
                                                  max_receive_count=REDRIVE_MAX_RECEIVES),
        )
        self.handler.function.add_event_source(sources.DynamoEventSource(
            table,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=10,
            filters=[lambda_.FilterCriteria.filter(storage.STREAM_FILTER_PATTERN)],
            report_batch_item_failures=True,
            bisect_batch_on_error=True,
            retry_attempts=MAX_RETRIES,
            max_record_age=MAX_RECORD_AGE,
            on_failure=sources.SqsDlq(self.dead_letters),
        ))

        self.redrive = PythonFunction(self, "Redrive", spec=functions.REDRIVE, code=code,
                                      environment=environment)
        state_machine.grant_start_execution(self.redrive.function)
        # Exactly what reading a failed batch back takes (grant_stream_read adds ListStreams on "*").
        iam.Grant.add_to_principal(grantee=self.redrive.function,
                                   actions=["dynamodb:GetShardIterator", "dynamodb:GetRecords"],
                                   resource_arns=[self._stream_arn(table)])
        iam.Grant.add_to_principal(grantee=self.redrive.function, actions=["dynamodb:UpdateItem"],
                                   resource_arns=[table.table_arn])
        self.redrive.function.add_event_source(sources.SqsEventSource(
            self.dead_letters,
            batch_size=5,
            report_batch_item_failures=True,
            # Lambda's minimum: after an outage a burst of dead letters must not throttle the
            # very StartExecution calls it retries.
            max_concurrency=2,
        ))

        self.unsettled_alarm = cloudwatch.Alarm(
            self, "UnsettledAlarm",
            alarm_description="A failed stream batch that even the redrive could not settle: its jobs "
                              "may still be SUBMITTED. See the redrive's ERROR log for the batch",
            metric=self.unsettled.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5)),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    @staticmethod
    def _stream_arn(table: dynamodb.ITable) -> str:
        if table.table_stream_arn is None:
            raise ValueError("the jobs table needs its stream: the stream trigger reads it")
        return table.table_stream_arn

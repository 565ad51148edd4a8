"""The execution finaliser: an EventBridge rule on the state machine's "Step Functions Execution
Status Change" events for FAILED, TIMED_OUT and ABORTED, whose target is the finaliser Lambda
(`lambdas/finaliser/handler.py`), which ends a job its execution left unfinished.

An event the function could not settle (a DynamoDB error outlasting Lambda's asynchronous
retries, or an event EventBridge could not deliver) goes to a queue whose alarm calls an
operator: the job it names may still be unfinished."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from contracts import functions
from infra.components.functions import PythonFunction

# Lambda's asynchronous retries of a failed invocation (its maximum), and how long an event may
# wait for them; EventBridge's own retries of a delivery (Lambda throttling it) are its maximum
# within the same age.
RETRY_ATTEMPTS = 2
DELIVERY_ATTEMPTS = 185
MAX_EVENT_AGE = Duration.hours(6)


class ExecutionFinaliser(Construct):
    def __init__(self, scope: Construct, id: str, *, code: lambda_.Code, table: dynamodb.ITable,
                 state_machine: sfn.StateMachine) -> None:
        super().__init__(scope, id)
        self.unsettled = sqs.Queue(
            self, "Unsettled",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.handler = PythonFunction(self, "Handler", spec=functions.FINALISER, code=code,
                                      environment={functions.ENV_TABLE: table.table_name})
        function = self.handler.function
        function.configure_async_invoke(retry_attempts=RETRY_ATTEMPTS, max_event_age=MAX_EVENT_AGE,
                                        on_failure=destinations.SqsDestination(self.unsettled))
        # The conditional update that ends the job, and the error and cause of its execution
        # (the event's detail may lack them); on this state machine's executions only.
        iam.Grant.add_to_principal(grantee=function, actions=["dynamodb:UpdateItem"],
                                   resource_arns=[table.table_arn])
        self.executions_arn = Stack.of(self).format_arn(
            service="states", resource="execution",
            resource_name=f"{state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME)
        iam.Grant.add_to_principal(grantee=function, actions=["states:DescribeExecution"],
                                   resource_arns=[self.executions_arn])

        self.rule = events.Rule(
            self, "Rule",
            description="opencomposer: executions of the training state machine that ended FAILED, "
                        "TIMED_OUT or ABORTED, for the finaliser to end their jobs",
            event_pattern=events.EventPattern(
                source=[functions.EXECUTION_EVENT_SOURCE],
                detail_type=[functions.EXECUTION_EVENT_DETAIL_TYPE],
                detail={"stateMachineArn": [state_machine.state_machine_arn],
                        "status": list(functions.EXECUTION_ENDED_OUTSIDE)},
            ),
            targets=[targets.LambdaFunction(function, retry_attempts=DELIVERY_ATTEMPTS,
                                            max_event_age=MAX_EVENT_AGE, dead_letter_queue=self.unsettled)],
        )

        self.unsettled_alarm = cloudwatch.Alarm(
            self, "UnsettledAlarm",
            alarm_description="An ended execution whose job the finaliser could not end: the job may "
                              "still show STARTING, TRAINING or STOPPING. See the finaliser's ERROR log",
            metric=self.unsettled.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

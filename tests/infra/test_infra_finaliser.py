"""The execution finaliser in the template: the rule on the state machine's execution endings,
its target, and a role that can do exactly what the finaliser does."""

from __future__ import annotations

from typing import Any

from synthesized import Synth

from contracts import functions
from infra.nag import render


def _rule(synth: Synth) -> dict[str, Any]:
    (rule,) = [r["Properties"] for r in synth.resources("AWS::Events::Rule").values()
               if r["Properties"].get("EventPattern", {}).get("source")
               == [functions.EXECUTION_EVENT_SOURCE]]
    return rule


def test_the_rule_matches_this_state_machines_executions_that_ended_outside_its_catch(
    synth: Synth,
) -> None:
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine")
    rule = _rule(synth)
    assert rule["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": [{"Ref": machine}], "status": ["FAILED", "TIMED_OUT", "ABORTED"]},
    }
    assert rule.get("EventBusName") is None  # the default bus, where Step Functions sends them
    assert rule["State"] == "ENABLED"


def test_the_rule_invokes_the_finaliser_and_keeps_what_it_cannot_deliver(synth: Synth) -> None:
    function_id, _ = synth.function_of(functions.FINALISER.handler)
    (target,) = _rule(synth)["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    queue = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert synth.template["Resources"][queue]["Type"] == "AWS::SQS::Queue"
    # Only EventBridge, for this rule, may invoke it.
    (rule_id,) = [lid for lid, r in synth.resources("AWS::Events::Rule").items()
                  if r["Properties"] == _rule(synth)]
    function_arn = {"Fn::GetAtt": [function_id, "Arn"]}
    permissions = [p["Properties"] for p in synth.resources("AWS::Lambda::Permission").values()
                   if p["Properties"]["FunctionName"] == function_arn]
    assert permissions == [{"Action": "lambda:InvokeFunction", "FunctionName": function_arn,
                            "Principal": "events.amazonaws.com",
                            "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]}}]
    # A failed invocation, after Lambda's retries, lands in the same queue, which raises an alarm.
    (config,) = [c["Properties"] for c in synth.resources("AWS::Lambda::EventInvokeConfig").values()
                 if c["Properties"]["FunctionName"] == {"Ref": function_id}]
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [queue, "Arn"]}
    assert config["MaximumRetryAttempts"] == 2
    alarms = [a["Properties"] for a in synth.resources("AWS::CloudWatch::Alarm").values()
              if {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
              in a["Properties"].get("Dimensions", [])]
    assert len(alarms) == 1 and alarms[0]["Threshold"] == 0


def test_the_finaliser_may_update_the_table_and_describe_this_machines_executions_only(
    synth: Synth,
) -> None:
    role = synth.role_of(functions.FINALISER.handler)
    (table,) = synth.resources("AWS::DynamoDB::Table")
    (machine,) = synth.resources("AWS::StepFunctions::StateMachine")
    (target,) = _rule(synth)["Targets"]
    queue = render(target["DeadLetterConfig"]["Arn"])
    granted = synth.grants(role)
    assert {a: r for a, r in granted.items() if a.split(":")[0] in {"dynamodb", "states", "sqs"}} == {
        "dynamodb:UpdateItem": {f"<{table}.Arn>"},  # the conditional end of the job, nothing else
        "states:DescribeExecution": {
            f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<{machine}.Name>:*"},
        # Lambda's on-failure destination sends as the function's role (CDK's grant for it).
        "sqs:SendMessage": {queue}, "sqs:GetQueueAttributes": {queue}, "sqs:GetQueueUrl": {queue},
    }
    assert {a.split(":")[0] for a in granted} == {"dynamodb", "states", "sqs", "logs", "xray"}
    assert not any("*" in action for action in granted)

"""The IAM evaluator the call check relies on (tests/infra/iam_policy.py), on IAM's documented
rules: where it is wrong, the call check would pass a denied call or fail an allowed one."""

from __future__ import annotations

import pytest
from iam_policy import Request, closest, evaluate

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/jobs"
ALLOW_JOB_ITEMS = {"Effect": "Allow", "Action": ["dynamodb:UpdateItem"], "Resource": TABLE,
                   "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["JOB#*"]}}}


def test_an_allow_whose_condition_fails_does_not_deny_what_another_statement_allows() -> None:
    # moto's evaluator turns the failing condition into an explicit Deny; IAM does not.
    other = {"Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": TABLE}
    request = Request("dynamodb:UpdateItem", TABLE, {"dynamodb:LeadingKeys": ["IDEMPOTENCY#x"]})
    assert not evaluate([ALLOW_JOB_ITEMS], request).allowed
    assert evaluate([ALLOW_JOB_ITEMS, other], request).allowed


def test_an_explicit_deny_wins_over_any_allow() -> None:
    deny = {"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}
    decision = evaluate([ALLOW_JOB_ITEMS, deny],
                        Request("dynamodb:UpdateItem", TABLE, {"dynamodb:LeadingKeys": ["JOB#1"]}))
    assert not decision.allowed and decision.statement == deny


def test_for_all_values_holds_for_a_missing_key_and_for_any_value_does_not() -> None:
    assert evaluate([ALLOW_JOB_ITEMS], Request("dynamodb:UpdateItem", TABLE)).allowed
    any_value = {**ALLOW_JOB_ITEMS,
                 "Condition": {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["JOB#*"]}}}
    assert not evaluate([any_value], Request("dynamodb:UpdateItem", TABLE)).allowed
    both = Request("dynamodb:UpdateItem", TABLE, {"dynamodb:LeadingKeys": ["JOB#1", "OTHER"]})
    assert evaluate([any_value], both).allowed and not evaluate([ALLOW_JOB_ITEMS], both).allowed


def test_a_single_valued_operator_fails_for_a_missing_key_unless_if_exists() -> None:
    listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
               "Condition": {"StringLike": {"s3:prefix": ["jobs/*"]}}}
    assert evaluate([listing], Request("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "jobs/1/"})).allowed
    assert not evaluate([listing], Request("s3:ListBucket", "arn:aws:s3:::b")).allowed
    if_exists = {**listing, "Condition": {"StringLikeIfExists": {"s3:prefix": ["jobs/*"]}}}
    assert evaluate([if_exists], Request("s3:ListBucket", "arn:aws:s3:::b")).allowed


def test_actions_match_in_any_case_and_arns_only_in_theirs() -> None:
    statement = {"Effect": "Allow", "Action": "SageMaker:stopTrainingJob",
                 "Resource": "arn:aws:sagemaker:us-east-1:123456789012:training-job/stack-*"}
    lower = "arn:aws:sagemaker:us-east-1:123456789012:training-job/stack-1"
    assert evaluate([statement], Request("sagemaker:StopTrainingJob", lower)).allowed
    mixed = lower.replace("stack", "Stack")
    assert not evaluate([statement], Request("sagemaker:StopTrainingJob", mixed)).allowed


def test_a_wildcard_stays_in_its_arn_segment_and_dots_are_literal() -> None:
    statement = {"Effect": "Allow", "Action": "s3:GetObject",
                 "Resource": "arn:aws:s3:::bucket/jobs/*/input/*"}
    assert evaluate([statement], Request("s3:GetObject", "arn:aws:s3:::bucket/jobs/1/input/m.mid")).allowed
    assert not evaluate([statement], Request("s3:GetObject", "arn:aws:s3:::bucket/jobs/1/model/m")).allowed
    group = "arn:aws:logs:us-east-1:123456789012:log-group:g"
    in_region = {"Effect": "Allow", "Action": "logs:PutLogEvents",
                 "Resource": "arn:aws:logs:us-*:123456789012:*"}
    assert evaluate([in_region], Request("logs:PutLogEvents", group)).allowed
    # as a plain pattern, this `*` would eat the region, the account and a colon
    across = {"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "arn:aws:logs:*:log-group:g"}
    assert not evaluate([across], Request("logs:PutLogEvents", group)).allowed
    dotted = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::a.b/k"}
    assert not evaluate([dotted], Request("s3:GetObject", "arn:aws:s3:::aXb/k")).allowed


def test_an_operator_it_does_not_know_is_an_error_not_a_pass() -> None:
    statement = {**ALLOW_JOB_ITEMS, "Condition": {"NumericLessThan": {"aws:MultiFactorAuthAge": "60"}}}
    with pytest.raises(ValueError, match="NumericLessThan"):
        evaluate([statement], Request("dynamodb:UpdateItem", TABLE))


def test_the_closest_statement_is_the_one_with_the_action_and_says_what_it_lacks() -> None:
    other = {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": TABLE}
    statement, why = closest([other, ALLOW_JOB_ITEMS],
                             Request("dynamodb:UpdateItem", TABLE, {"dynamodb:LeadingKeys": ["X"]}))
    assert statement == ALLOW_JOB_ITEMS and "LeadingKeys" in why
    statement, why = closest([other], Request("dynamodb:PutItem", TABLE))
    assert statement == other and why == "action not in the statement"

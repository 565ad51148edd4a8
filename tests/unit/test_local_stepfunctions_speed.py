"""The interpreter's speed-ups keep moto's behaviour: the same program for the same definition,
fresh components where states keep workers, syntax errors as before, all undone by uninstall."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException
from moto.stepfunctions.parser.asl.utils import json_path

from opencomposer.local import resources, stepfunctions_speed

PASS = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
PARALLEL = json.dumps(
    {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Parallel",
                "End": True,
                "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}}],
            }
        },
    }
)


@pytest.fixture()
def installed() -> Iterator[None]:
    stepfunctions_speed.install()
    try:
        yield
    finally:
        stepfunctions_speed.uninstall()


def test_the_stacks_definition_is_parsed_once_and_its_program_shared(installed: None) -> None:
    definition = resources.state_machine_definition(resources.LocalNames())
    first, tree = AmazonStateLanguageParser.parse(definition)
    again, same_tree = AmazonStateLanguageParser.parse(definition)
    assert again is first and same_tree is tree


def test_map_and_parallel_states_get_fresh_components(installed: None) -> None:
    first, tree = AmazonStateLanguageParser.parse(PARALLEL)
    again, same_tree = AmazonStateLanguageParser.parse(PARALLEL)
    assert again is not first and same_tree is tree


def test_a_broken_definition_is_still_refused(installed: None) -> None:
    with pytest.raises(ASLParserException):
        AmazonStateLanguageParser.parse('{"StartAt": "A", "States": {"A": {"Type": "Nope"}}}')


def test_a_new_install_builds_its_own_components(installed: None) -> None:
    # a program built under an earlier install (another task integration) is not shared with
    # the stack that installs next: its `.sync` task would be moto's, which refuses it
    definition = resources.state_machine_definition(resources.LocalNames())
    before, _ = AmazonStateLanguageParser.parse(definition)
    stepfunctions_speed.uninstall()
    stepfunctions_speed.install()
    assert AmazonStateLanguageParser.parse(definition)[0] is not before


def test_uninstall_puts_moto_back() -> None:
    parse, path_parse = AmazonStateLanguageParser.parse, json_path.parse
    stepfunctions_speed.install()
    assert json_path.parse is not path_parse
    stepfunctions_speed.uninstall()
    assert AmazonStateLanguageParser.parse is parse and json_path.parse is path_parse
    assert AmazonStateLanguageParser.parse(PASS)[0] is not AmazonStateLanguageParser.parse(PASS)[0]

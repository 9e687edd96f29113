"""Turning name=value lists into pairs and results back into ASMX-shaped objects: pure logic."""

import pytest

from ssobridge.providers.base import ProviderResult, Variables
from ssobridge.wire.soap import (ExternalLoginProviderInputs, ExternalLoginProviderResult, TooManyVariables,
                                 _to_wire, variable_pairs, xml_safe)


def test_values_split_on_the_first_equals_and_junk_items_are_ignored():
    inputs = ExternalLoginProviderInputs(InputVariables=["a=b=c", None, "no-equals", "cf_Billing ID=4126", "e="])
    assert variable_pairs(inputs, 10) == [("a", "b=c"), ("cf_Billing ID", "4126"), ("e", "")]


def test_missing_inputs_give_no_pairs():
    assert variable_pairs(None, 10) == []
    assert variable_pairs(ExternalLoginProviderInputs(), 10) == []


def test_more_variables_than_the_limit_is_refused():
    with pytest.raises(TooManyVariables):
        variable_pairs(ExternalLoginProviderInputs(InputVariables=["a=1"] * 11), 10)


def test_characters_xml_forbids_are_stripped_from_outputs():
    result = _to_wire(ProviderResult(True, "a\x00b\x0bc", (("DisplayName", "Jö\x01rg\U0001F600"),)),
                      ExternalLoginProviderResult)
    assert result.Message == "abc"
    assert result.OutputVariables == ["DisplayName=Jörg\U0001F600"]
    assert xml_safe("tab\tnew\nline\r") == "tab\tnew\nline\r"


def test_names_are_case_insensitive_and_repeats_are_noted():
    variables = Variables.from_pairs([("LoginUsername", "a"), ("loginusername", "b"), ("cf_Issue Type", "x")])
    assert variables.get("loginUsername") == "b"
    assert variables.repeated == ("loginusername",)
    assert variables.custom_fields() == {"Issue Type": "x"}

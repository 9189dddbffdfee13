"""Settings read from the environment fail loudly on bad values."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from pacsone.settings import env_bool, env_choice, env_int, parse_dicom_instances


def test_several_dicom_instances_are_parsed():
    assert parse_dicom_instances("MAIN:11112, CT2:11113", "X", 1) == [("MAIN", 11112), ("CT2", 11113)]


def test_no_instances_means_the_default_one():
    assert parse_dicom_instances("", "PACSONE", 11112) == [("PACSONE", 11112)]


@pytest.mark.parametrize("raw", ["MAIN", "MAIN:port", ":11112", "AN_AE_TITLE_TOO_LONG:1"])
def test_a_bad_instance_list_is_refused(raw):
    with pytest.raises(ImproperlyConfigured):
        parse_dicom_instances(raw, "PACSONE", 11112)


def test_bad_numbers_booleans_and_choices_are_refused(monkeypatch):
    monkeypatch.setenv("X_INT", "eleven")
    monkeypatch.setenv("X_BOOL", "maybe")
    monkeypatch.setenv("X_CHOICE", "sometimes")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_INT", 1)
    with pytest.raises(ImproperlyConfigured):
        env_bool("X_BOOL", True)
    with pytest.raises(ImproperlyConfigured):
        env_choice("X_CHOICE", "any", ("any", "registered"))


def test_a_port_out_of_range_is_refused(monkeypatch):
    monkeypatch.setenv("X_PORT", "70000")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_PORT", 11112, 1, 65535)

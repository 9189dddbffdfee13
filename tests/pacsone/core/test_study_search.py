"""The study search shared by the study list and the REST API: the modality filter takes one
value, a list (`CT\\MR`, `CT,MR`) or repeated parameters, and matches any of them."""

import pytest
from django.http import QueryDict

from pacsone.models import Series, Study
from pacsone.study_search import search_studies
from tests.people import make_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def studies():
    make_study("1.2.826.5.1", "P1", modality="CT")
    mixed = make_study("1.2.826.5.2", "P2", modality="PT")
    Series.objects.create(series_instance_uid="1.2.826.5.2.2", study=mixed, modality="CT")
    make_study("1.2.826.5.3", "P3", modality="MR")
    make_study("1.2.826.5.4", "P4", modality="US")


def found(query: str) -> set[str]:
    result, problems = search_studies(Study.objects.all(), QueryDict(query))
    assert problems == {}
    return set(result.values_list("study_instance_uid", flat=True))


@pytest.mark.parametrize("query,expected", [
    ("modality=MR", {"1.2.826.5.3"}),
    ("modality=ct", {"1.2.826.5.1", "1.2.826.5.2"}),
    ("modality=CT%5CMR", {"1.2.826.5.1", "1.2.826.5.2", "1.2.826.5.3"}),  # CT\MR
    ("modality=PT,US", {"1.2.826.5.2", "1.2.826.5.4"}),
    ("modality=MR&modality=US", {"1.2.826.5.3", "1.2.826.5.4"}),  # a multi-select
    ("modality=XA%5CNM", set()),
    ("modality=", {"1.2.826.5.1", "1.2.826.5.2", "1.2.826.5.3", "1.2.826.5.4"}),
])
def test_it_matches_any_of_the_modalities(studies, query, expected):
    assert found(query) == expected


def test_a_plain_dict_of_parameters_works_too(studies):
    result, _problems = search_studies(Study.objects.all(), {"modality": "MR\\US"})
    assert set(result.values_list("study_instance_uid", flat=True)) == {"1.2.826.5.3", "1.2.826.5.4"}

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from dashboard.access import OPERATORS_GROUP, VIEWERS_GROUP

PASSWORD = "a-long-test-password"


def make_staff(username: str, group: str | None) -> object:
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username, password=PASSWORD, is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def operator(db):
    return make_staff("olivia", OPERATORS_GROUP)


@pytest.fixture
def viewer(db):
    return make_staff("victor", VIEWERS_GROUP)


@pytest.fixture
def operator_client(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


@pytest.fixture
def viewer_client(viewer) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


@pytest.fixture
def count_queries() -> Callable[..., int]:
    """``count_queries(client, url)``: how many queries one GET of ``url`` makes (the
    response read to its end, streaming included), after a first GET has warmed the
    session cache, so two counts compare like with like."""

    def count(client: Client, url: str) -> int:
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
            assert response.status_code == 200, response.status_code
            if response.streaming:
                b"".join(response.streaming_content)
        return len(captured.captured_queries)

    return count

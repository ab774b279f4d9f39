"""Fixtures of the API tests: personas with tokens, and a client that calls the API as one of them."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from rlaif_site.models import ApiToken
from tests import factories

#: The persona matrix of the pages: None is an anonymous caller.
PERSONAS = ("anonymous", "viewer", "author", "operator", "auditor")


class Api:
    """Calls ``/api/v1/…`` with a bearer token (or anonymously) and decodes the JSON answer."""

    def __init__(self, token: str | None = None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def call(self, method: str, path: str, body=None, **extra):
        url = "/api/v1" + path
        kwargs = {"headers": {**self.headers, **extra.pop("headers", {})}, **extra}
        if body is not None and method != "get":
            kwargs.setdefault("data", json.dumps(body))
            kwargs.setdefault("content_type", "application/json")
        elif body is not None:
            kwargs["data"] = body
        return getattr(self.client, method)(url, **kwargs)

    def get(self, path, params=None, **extra):
        return self.call("get", path, params, **extra)

    def post(self, path, body=None, **extra):
        return self.call("post", path, body if body is not None else {}, **extra)

    def patch(self, path, body=None, **extra):
        return self.call("patch", path, body if body is not None else {}, **extra)


def token_for(user) -> str:
    return ApiToken.issue(user, "tests")[1]


@pytest.fixture
def api_as(db):
    """``api_as("operator")`` → an :class:`Api` holding a token of a user with that persona's roles."""
    roles = {"viewer": (), "author": ("authors",), "operator": ("operators",), "auditor": ("auditors",)}
    made = {}

    def make(persona: str) -> Api:
        if persona == "anonymous":
            return Api()
        if persona not in made:
            made[persona] = factories.make_user(f"api-{persona}", roles=roles[persona])
        api = Api(token_for(made[persona]))
        api.user = made[persona]
        return api

    return make

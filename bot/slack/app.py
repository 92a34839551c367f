"""The bolt `AsyncApp`: every listener registered on one app (HTTP or Socket Mode alike)."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.authorization.async_single_team_authorization import (
    AsyncSingleTeamAuthorization,
)
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack.admin import KnowledgeAdmin
from bot.slack.listeners import actions, commands, events
from bot.slack.services import SlackServices


def build_app(services: SlackServices) -> AsyncApp:
    secret = services.settings.slack_signing_secret
    # bolt logs request bodies (people's messages) at DEBUG; LOG_LEVEL=DEBUG must not print
    # them. Signatures are checked in front of bolt (bot.slack.verification), so bolt never
    # sees, and never logs, an unsigned body.
    bolt_log = logging.getLogger("slack_bolt")
    bolt_log.setLevel(max(bolt_log.getEffectiveLevel(), logging.INFO))
    app = AsyncApp(
        client=services.client,
        # Verified on every HTTP request; Socket Mode requests carry no signature.
        signing_secret=secret.get_secret_value() if secret is not None else "",
        logger=logging.getLogger("slack_bolt"),
        # Ack first, work after: Slack wants an answer within 3 s.
        process_before_response=False,
    )
    # One knowledge admin for every listener: one followed-channels cache and one pace for
    # Slack's history calls per process.
    admin = KnowledgeAdmin(services)
    events.register(app, services, admin)
    commands.register(app, services, admin)
    actions.register(app, services, admin)
    return app


def share_auth(app: AsyncApp, auth: AsyncSlackResponse) -> None:
    """Hand bolt the auth.test answer the bot got at start. Bolt's single-workspace
    authorization calls auth.test on the first request it handles and keeps the answer; on a
    cold burst every request in flight makes that call (100 for 50 mentions and their
    retries) before the first answer returns."""
    for middleware in app._async_middleware_list:  # built in AsyncApp.__init__
        if isinstance(middleware, AsyncSingleTeamAuthorization):
            middleware.auth_test_result = middleware.auth_test_result or auth

"""Socket Mode: the bot opens `apps.connections.open`'s WebSocket, acks envelopes, answers;
and the same server's health endpoints."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.faults import Fault
from tests.fakes.slack import APP_TOKEN
from tests.slack_harness import envelope, running_bot


async def test_socket_mode_acks_envelopes_and_answers(tmp_path: Path) -> None:
    async with running_bot(tmp_path, socket_mode=True, slack_signing_secret=None) as bot:
        opened = bot.slack.calls("apps.connections.open")
        assert opened and opened[0].token == APP_TOKEN
        event = {
            "type": "app_mention",
            "user": "U1",
            "channel": "C1",
            "ts": "60.0",
            "text": "<@UBOT> how do I add documents?",
            "team": "T0TEAM",
        }
        await bot.slack.push(
            {
                "envelope_id": "env-1",
                "type": "events_api",
                "accepts_response_payload": False,
                "payload": envelope(event),
            }
        )
        ack = await bot.slack.acked("env-1")
        assert ack == {"envelope_id": "env-1"} or ack["envelope_id"] == "env-1"
        [msg] = await bot.slack.wait_for(lambda: bot.slack.posted("C1"))
        assert msg["thread_ts"] == "60.0" and "[1]" in msg["text"]
        # No HTTP events endpoint in Socket Mode: nothing to sign, nothing to forge.
        async with bot.http.post(f"{bot.url}/slack/events", data="{}") as resp:
            assert resp.status == 404


async def test_health_and_readiness(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        async with bot.http.get(f"{bot.url}/healthz") as resp:
            assert resp.status == 200
        async with bot.http.get(f"{bot.url}/readyz") as resp:
            body = await resp.json()
            assert resp.status == 200 and body["checks"] == {
                "store": "ok",
                "knowledge": "ok",
                "slack": "ok",
            }
        bot.server._auth_ok_until = 0  # re-check Slack auth now
        bot.slack.faults.add("auth.test", Fault.raw(200, {"ok": False, "error": "invalid_auth"}))
        async with bot.http.get(f"{bot.url}/readyz") as resp:
            body = await resp.json()
            assert resp.status == 503 and body["checks"]["slack"].startswith("auth failed")
        async with bot.http.get(f"{bot.url}/metrics") as resp:
            assert "avatarbot_answers_total" in await resp.text()

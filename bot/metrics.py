"""Prometheus metrics served at `/metrics` (prometheus_client's default registry)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ANSWERS = Counter("avatarbot_answers_total", "Answers posted in Slack", ["status"])
ANSWER_SECONDS = Histogram(
    "avatarbot_answer_seconds",
    "From a question's arrival to its answer posted",
    buckets=(0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
)
ERRORS = Counter("avatarbot_errors_total", "Failures shown to users, by kind", ["kind"])
VIDEOS = Counter("avatarbot_heygen_videos_total", "Answer videos delivered")
VIDEO_MINUTES = Counter("avatarbot_heygen_video_minutes_total", "Minutes of video delivered")

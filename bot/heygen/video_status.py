"""`VideoStatus`: a HeyGen render's state, the one vocabulary for v3 and v2 alike.

v3 (`GET /v3/videos/{id}`, https://developers.heygen.com/reference/get-video) reports
pending | processing | completed | failed; the legacy v1 status call
(https://docs.heygen.com/reference/video-status) adds "waiting" (queued behind a dependency,
e.g. an avatar still training), which is read as pending.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class VideoStatus(StrEnum):
    PENDING = "pending"  # queued (v2's "waiting" too)
    PROCESSING = "processing"  # being generated
    COMPLETED = "completed"  # video_url is available
    FAILED = "failed"  # see the failure code / message

    @property
    def done(self) -> bool:
        return self in (VideoStatus.COMPLETED, VideoStatus.FAILED)

    @classmethod
    def from_wire(cls, value: Any) -> Any:
        """A pydantic before-validator: the vendor's spelling -> ours."""
        return cls.PENDING if value == "waiting" else value

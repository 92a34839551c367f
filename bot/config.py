"""Every setting the bot reads, in one pydantic-settings class.

Variables come from the environment or a `.env` file in the working directory. Each field
name is its variable (case-insensitive): `chunk_size` is `CHUNK_SIZE`. Every variable is
documented in README.md and `.env.example`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.redaction import register_secrets
from knowledge.config import AnswerConfig, KnowledgeConfig, LLMConfig

if TYPE_CHECKING:  # the crawler loads aiohttp and lxml: only for commands that crawl
    from knowledge.sources.crawl import CrawlLimits


class VideoApi(StrEnum):
    """Which HeyGen video API renders videos."""

    V3 = "v3"  # POST /v3/videos (current)
    V2 = "v2"  # POST /v2/video/generate (legacy, seed documents)


class LiveApi(StrEnum):
    """Which backend runs live avatar sessions."""

    LIVEAVATAR = "liveavatar"  # LiveAvatar /v1/sessions/* (current)
    STREAMING = "streaming"  # HeyGen streaming.* v1 (legacy)


class LiveReuse(StrEnum):
    """Which questions share one live avatar session (and one viewer link)."""

    CHANNEL = "channel"  # every question in a channel (default)
    THREAD = "thread"  # one per thread
    USER = "user"  # one per asker
    OFF = "off"  # a fresh session per answer


class SettingsError(Exception):
    """A setting is invalid; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
    )

    # --- storage ---------------------------------------------------------------------
    avatarbot_data_dir: Path = Field(
        default=Path("./data"), description="Everything the bot writes lives here."
    )

    # --- knowledge ---------------------------------------------------------------------
    embeddings: str = Field(
        default="onnx-minilm",
        description="none | onnx-minilm | sentence-transformers:<name-or-path> | openai:<model>",
    )
    chunk_size: int = Field(default=1000, ge=100, le=20_000)
    chunk_overlap: int = Field(default=150, ge=0, le=5_000)
    max_document_mb: float = Field(default=20.0, gt=0)
    chroma_host: str | None = None
    chroma_port: int = Field(default=8000, ge=1, le=65535)

    # --- answering ---------------------------------------------------------------------
    llm_model: str | None = Field(
        default=None, description="langchain init_chat_model string, e.g. openai:gpt-4o-mini"
    )
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    answer_min_score: float = Field(default=0.2, ge=0)
    spoken_max_seconds: float = Field(default=60.0, gt=0)

    # --- burst latency and memory (issue 17, perf) -----------------------------------------
    onnx_threads: int = Field(
        default=0, ge=0, description="threads per ONNX embedding call; 0 = cores, at most 4"
    )
    slack_queued_answers: int = Field(
        default=256,
        ge=0,
        description="questions that wait for one of SLACK_MAX_CONCURRENT_ANSWERS; beyond: busy",
    )

    # --- answer quality (issue 10) ---------------------------------------------------------
    reranker: str = Field(
        default="",
        description="optional cross-encoder re-ranker: cross-encoder:<name-or-path>; unset = off",
    )

    # --- HeyGen / LiveAvatar -----------------------------------------------------------
    heygen_api_key: SecretStr | None = None
    heygen_api_base: str = "https://api.heygen.com"
    heygen_avatar_id: str | None = None
    heygen_voice_id: str | None = None
    heygen_video_api: VideoApi = VideoApi.V3
    heygen_live_api: LiveApi = LiveApi.LIVEAVATAR
    heygen_webhook_secret: SecretStr | None = None
    heygen_timeout_seconds: float = Field(default=30.0, gt=0)
    liveavatar_api_key: SecretStr | None = None
    liveavatar_api_base: str = "https://api.liveavatar.com"

    # --- the bot's state (bot/store) ----------------------------------------------------
    # Unset: SQLite in <AVATARBOT_DATA_DIR>/state.db. postgresql://user:pw@host/db for
    # several replicas (normalised to postgresql+asyncpg://).
    database_url: SecretStr | None = None
    # Fernet key(s) encrypting live-session tokens at rest; comma-separated to rotate (the
    # first encrypts). Unset: a random key kept in <AVATARBOT_DATA_DIR>/store.key (0600).
    store_secret_key: SecretStr | None = None
    # Answers, feedback, speech, finished jobs and expired links older than this are purged.
    retention_days: float = Field(default=30.0, gt=0)

    # --- avatar delivery: live sessions, viewer page, video jobs ----------------------------
    # Absolute base of this bot's web server (viewer links, HeyGen webhook); unset = no live
    # link is offered (the reason is logged once at start).
    public_base_url: str | None = None
    live_reuse: LiveReuse = LiveReuse.CHANNEL
    # The live avatar's id in the live API's own catalogue (LiveAvatar: a UUID from
    # app.liveavatar.com; streaming v1: an interactive avatar). Never HEYGEN_AVATAR_ID: a
    # HeyGen video avatar is not valid there.
    live_avatar_id: str | None = None
    live_voice_id: str | None = None
    live_quality: str = Field(default="medium", pattern="^(low|medium|high)$")
    live_language: str = "en"
    live_idle_close_seconds: float = Field(default=180.0, ge=10)
    live_keepalive_seconds: float = Field(default=120.0, ge=5)
    live_max_session_seconds: float = Field(default=1200.0, ge=60)
    live_max_sessions: int = Field(default=2, ge=1)
    live_daily_minutes: float = Field(default=120.0, ge=0)
    live_link_ttl_hours: float = Field(default=24.0, gt=0)
    # --- viewer page limits (live engineer; per replica) ---
    live_streams_per_link: int = Field(default=20, ge=1)  # open pages of one link
    live_streams_per_client: int = Field(default=20, ge=1)  # open pages from one address
    live_streams_total: int = Field(default=500, ge=1)  # open pages in this process
    live_replay_seconds: float = Field(default=5.0, gt=0)  # one replay per scope per window
    video_aspect_ratio: str = Field(default="16:9", pattern="^(16:9|9:16|1:1|4:5|5:4)$")
    video_resolution: str = Field(default="720p", pattern="^(720p|1080p|4k)$")
    video_captions: bool = False
    # HeyGen caption style burnt into the picture when VIDEO_CAPTIONS=true (v3 `caption.style`,
    # v2 `caption_mode=burn_in`); empty = a subtitle file only, the picture stays plain.
    video_caption_style: str = "default"
    video_template_id: str | None = None
    video_template_variable: str = "script"
    video_timeout_seconds: float = Field(default=1800.0, gt=0)
    video_poll_seconds: float = Field(default=5.0, gt=0)
    video_poll_max_seconds: float = Field(default=60.0, gt=0)
    video_max_mb: float = Field(default=200.0, gt=0)
    video_daily_per_workspace: int = Field(default=100, ge=0)
    video_daily_per_user: int = Field(default=10, ge=0)
    video_workers: int = Field(default=2, ge=1, le=32)

    @field_validator("public_base_url")
    @classmethod
    def _absolute_base(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        v = v.strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s):// URL")
        return v

    # --- Slack app and `avatarbot serve` ------------------------------------------------
    slack_bot_token: SecretStr | None = Field(default=None, description="xoxb-… bot token")
    slack_signing_secret: SecretStr | None = Field(
        default=None, description="verifies HTTP-mode requests (required without an app token)"
    )
    slack_app_token: SecretStr | None = Field(
        default=None, description="xapp-… app-level token: Socket Mode when set"
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Web API base (GovSlack, tests)"
    )
    port: int = Field(default=3000, ge=0, le=65535, description="0 = any free port")
    admin_user_ids: str = Field(
        default="", description="comma-separated Slack user ids allowed to change knowledge"
    )
    slack_thread_followups: bool = Field(
        default=True, description="answer follow-ups in threads the bot answered, no mention"
    )
    slack_user_rate_per_minute: int = Field(default=6, ge=1)
    slack_max_concurrent_answers: int = Field(default=8, ge=1)
    slack_max_question_chars: int = Field(default=4000, ge=100)
    slack_max_file_mb: float = Field(default=20.0, gt=0)
    slack_event_ttl_hours: float = Field(default=24.0, gt=0)
    # --- sec: exactly-once answer posts (bot.slack.posting) ---
    # At start, answers saved but never recorded as posted are looked for in their thread
    # and posted if absent, once at least this old (younger ones may still be finishing in
    # another replica) and at most an hour old.
    slack_resume_after_seconds: float = Field(default=60.0, ge=0)
    log_format: str = Field(default="text", pattern="^(text|json)$")
    log_level: str = Field(default="INFO")

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        if not v.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return v if v.endswith("/") else v + "/"

    @property
    def admin_ids(self) -> frozenset[str]:
        return frozenset(u.strip() for u in self.admin_user_ids.split(",") if u.strip())

    # --- security (issue 11) --------------------------------------------------------------
    # Off by default: URL fetches reach public addresses only. An admin lists intranet hosts
    # they trust (names, `*.domain` wildcards, IPs or CIDRs), comma-separated.
    url_allow_hosts: str = Field(
        default="",
        description="Hosts/CIDRs URL fetches may reach although private: wiki.corp,10.2.0.0/16",
    )

    # --- knowledge freshness (issue 20) ---------------------------------------------------
    crawl_max_pages: int = Field(default=200, ge=1, description="Pages one site crawl fetches.")
    crawl_max_depth: int = Field(default=5, ge=0, description="Link hops from the start URL.")
    crawl_max_mb: float = Field(default=100.0, gt=0, description="Page bytes one crawl reads.")
    crawl_max_seconds: float = Field(default=600.0, gt=0, description="One crawl's time limit.")
    knowledge_sync_every_hours: float = Field(
        default=0.0,
        ge=0,
        description="`avatarbot serve` re-syncs every source this often, once across "
        "replicas; 0 = off.",
    )

    slack_source_max_threads: int = Field(
        default=500, ge=1, description="Threads `/knowledge add #channel` reads at most."
    )
    slack_history_calls_per_minute: float = Field(
        default=45.0,
        gt=0,
        description="Pace of conversations.history/replies: Tier 3 allows 50 for internal "
        "apps; 1 for apps distributed outside the Slack Marketplace.",
    )

    def crawl_limits(self) -> CrawlLimits:
        from knowledge.sources.crawl import CrawlLimits

        return CrawlLimits(
            max_pages=self.crawl_max_pages,
            max_depth=self.crawl_max_depth,
            max_bytes=int(self.crawl_max_mb * 1024 * 1024),
            max_seconds=self.crawl_max_seconds,
        )

    @model_validator(mode="after")
    def _register_secrets(self) -> Settings:
        """Every configured key or token is redacted from every error and log line."""
        register_secrets(
            value.get_secret_value()
            for value in self.__dict__.values()
            if isinstance(value, SecretStr)
        )
        return self

    @field_validator("chunk_overlap")
    @classmethod
    def _overlap_below_size(cls, v: int, info: object) -> int:
        size = getattr(info, "data", {}).get("chunk_size")
        if size is not None and v >= size:
            raise ValueError(f"must be smaller than CHUNK_SIZE ({size})")
        return v

    @property
    def data_dir(self) -> Path:
        return self.avatarbot_data_dir

    def knowledge_config(self) -> KnowledgeConfig:
        """The knowledge library's own config: `knowledge` never imports this module."""
        return KnowledgeConfig(
            data_dir=self.avatarbot_data_dir,
            embeddings=self.embeddings,
            chunk_size=self.chunk_size,
            chunk_overlap=self.chunk_overlap,
            max_document_bytes=int(self.max_document_mb * 1024 * 1024),
            chroma_host=self.chroma_host,
            chroma_port=self.chroma_port,
            url_allow_hosts=tuple(
                entry.strip() for entry in self.url_allow_hosts.split(",") if entry.strip()
            ),
            reranker=self.reranker,
            onnx_threads=self.onnx_threads,
        )

    def llm_config(self) -> LLMConfig | None:
        """The language model LLM_* describe, or None when LLM_MODEL is unset (extractive)."""
        if not self.llm_model:
            return None
        key = self.llm_api_key
        return LLMConfig(
            model=self.llm_model,
            base_url=self.llm_base_url or None,
            # A blank key means "none" (local models), not an empty credential.
            api_key=key if key is not None and key.get_secret_value().strip() else None,
        )

    def answer_config(self) -> AnswerConfig:
        """What the Answerer needs: shared by `avatarbot ask` and the Slack handlers."""
        return AnswerConfig(
            llm=self.llm_config(),
            min_relevance=self.answer_min_score,
            spoken_max_seconds=self.spoken_max_seconds,
        )


def is_set(secret: SecretStr | None) -> bool:
    """A secret setting that holds more than whitespace."""
    return secret is not None and bool(secret.get_secret_value().strip())


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning a validation failure into one message naming each variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]).upper() if err["loc"] else "?"
            problems.append(f"{name}: {err['msg']}")
        raise SettingsError("Invalid setting " + "; ".join(problems)) from None

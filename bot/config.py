"""Every setting the bot reads, in one pydantic-settings class.

Variables come from the environment or a `.env` file in the working directory. Each field
name is its variable (case-insensitive): `chunk_size` is `CHUNK_SIZE`. Every variable is
documented in README.md and `.env.example`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from knowledge.config import AnswerConfig, KnowledgeConfig, LLMConfig


class VideoApi(StrEnum):
    """Which HeyGen video API renders videos."""

    V3 = "v3"  # POST /v3/videos (current)
    V2 = "v2"  # POST /v2/video/generate (legacy, seed documents)


class LiveApi(StrEnum):
    """Which backend runs live avatar sessions."""

    LIVEAVATAR = "liveavatar"  # LiveAvatar /v1/sessions/* (current)
    STREAMING = "streaming"  # HeyGen streaming.* v1 (legacy)


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
            reranker=self.reranker,
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

"""The knowledge library's configuration: plain values, no environment reading.

The bot builds these from its settings (`bot.config.Settings.knowledge_config` and
`.answer_config`); a library user builds them directly. Kept free of LangChain so reading
settings stays cheap for commands that never answer.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr


class KnowledgeConfig(BaseModel):
    data_dir: Path = Path("./data")
    embeddings: str = "onnx-minilm"
    chunk_size: int = Field(default=1000, ge=100)
    chunk_overlap: int = Field(default=150, ge=0)
    max_document_bytes: int = 20 * 1024 * 1024
    chroma_host: str | None = None
    chroma_port: int = 8000
    # Hosts an admin trusts although they resolve to private addresses (URL_ALLOW_HOSTS):
    # names, `*.domain` wildcards, IPs or CIDRs. Empty: URL fetches reach public hosts only.
    url_allow_hosts: tuple[str, ...] = ()
    # Optional cross-encoder re-ranker (`cross-encoder:<name-or-path>`); "" = off.
    reranker: str = ""
    # Threads per ONNX embedding call (ONNX_THREADS); 0 = the machine's cores, at most 4.
    onnx_threads: int = Field(default=0, ge=0)
    # Cast the int8 weights to float once at load (+90 MB, 5x faster small calls): for a
    # process that embeds questions one by one (serving), not for bulk indexing.
    onnx_fold_weights: bool = False
    # A writer renews its intents and the commit lock every quarter of this; another writer
    # sweeps them only once this long has passed without renewal (or their process is gone).
    write_lease_seconds: float = Field(default=60.0, gt=0)

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def lexical_dir(self) -> Path:
        return self.data_dir / "lexical"


class LLMConfig(BaseModel):
    """How to reach the language model; built by the bot from LLM_* settings."""

    model: str = Field(description="init_chat_model string, e.g. openai:gpt-4o-mini")
    base_url: str | None = None
    api_key: SecretStr | None = None
    timeout_seconds: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0)


class AnswerConfig(BaseModel):
    """How the Answerer answers (`Answerer.from_config`)."""

    llm: LLMConfig | None = Field(
        default=None, description="None: extractive answers from the passages, no model."
    )
    min_relevance: float = Field(
        default=0.2, ge=0, description="Below this best-passage relevance: nothing found."
    )
    spoken_max_seconds: float = Field(
        default=60.0, gt=0, description="The avatar's spoken variant is cut to this length."
    )

"""The knowledge library's configuration: plain values, no environment reading.

The bot builds this from its settings (`bot.config.Settings.knowledge_config`); a library
user builds it directly.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class KnowledgeConfig(BaseModel):
    data_dir: Path = Path("./data")
    embeddings: str = "onnx-minilm"
    chunk_size: int = Field(default=1000, ge=100)
    chunk_overlap: int = Field(default=150, ge=0)
    max_document_bytes: int = 20 * 1024 * 1024
    chroma_host: str | None = None
    chroma_port: int = 8000

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def lexical_dir(self) -> Path:
        return self.data_dir / "lexical"

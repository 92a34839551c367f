"""What each `avatarbot` command loads: memory a user sees in `top` or `/usr/bin/time -v`.

Each command runs as its own OS process (as a user runs it) and reports the modules it
loaded. `knowledge add` of a markdown folder needs neither the Slack app, nor the HTTP
server, nor the conversation store, nor the PDF/Word/HTML readers (~100 MB resident
together, measured in docs/performance.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Runs the CLI as `avatarbot` does, then prints the top-level packages it loaded.
RUN = (
    "import json, sys\n"
    "from bot.cli import main\n"
    "sys.argv = ['avatarbot', *sys.argv[1:]]\n"
    "try:\n"
    "    main()\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "print(json.dumps({'code': code, 'modules': sorted({m.split('.')[0] for m in sys.modules})}))\n"
)
HEAVY_FOR_INGEST = {
    "slack_bolt",  # the Slack app
    "slack_sdk",
    "sqlalchemy",  # the conversation store
    "alembic",
    "prometheus_client",  # /metrics
    "pypdf",  # readers of formats the folder does not hold
    "docx",
    "trafilatura",
    "bs4",
}


def _run(tmp_path: Path, *args: str) -> dict[str, object]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HEYGEN_"))},
        "AVATARBOT_DATA_DIR": str(tmp_path / "data"),
        "EMBEDDINGS": "none",
        "PYTHONPATH": str(ROOT),
    }
    out = subprocess.run(
        [sys.executable, "-c", RUN, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_knowledge_add_of_markdown_loads_no_server_stack(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tokens.md").write_text("# API tokens\n\nRotate the bot token every ninety days.\n")
    report = _run(tmp_path, "knowledge", "add", str(docs))
    assert report["code"] in (0, None)
    loaded = set(report["modules"])  # type: ignore[arg-type]
    assert "chromadb" in loaded  # it did index
    assert not loaded & HEAVY_FOR_INGEST, sorted(loaded & HEAVY_FOR_INGEST)

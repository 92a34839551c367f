"""The user docs stay in step with the code: every setting documented, links that resolve,
and the Slack set-up naming every URL the manifest holds."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
ENV_EXAMPLE = (ROOT / ".env.example").read_text(encoding="utf-8")
# Pages other branches deliver (docs/readme/<name>.md text folds into the README at merge).
PENDING = {
    "docs/img/slack-answer.png",
    "docs/img/viewer-desktop.png",
    "docs/avatar-live.md",
    "docs/avatar-video.md",
    "docs/security.md",
    "docs/performance.md",
}


def variables() -> list[str]:
    return [name.upper() for name in Settings.model_fields]


def test_every_setting_is_in_the_readme_table_and_env_example() -> None:
    first_cells = re.findall(r"^\| ([^|]+) \|", README, re.M)  # a table row's first cell
    in_readme = {v for cell in first_cells for v in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}
    in_env = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE, re.M))
    assert [v for v in variables() if v not in in_readme] == []
    assert [v for v in variables() if v not in in_env] == []


def test_relative_links_resolve() -> None:
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            relative = path.relative_to(ROOT).as_posix()
            if not path.exists() and relative not in PENDING:
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_the_slack_set_up_names_every_url_in_the_manifest() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
    commands = manifest["features"]["slash_commands"]
    settings = manifest["settings"]
    urls = [c["url"] for c in commands]
    urls += [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    ]
    words = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
    setup = README[README.index("## Run it in Slack") : README.index("## Features in detail")]
    assert f"**all {words[len(urls)]}** URLs" in setup
    for command in commands:
        assert f"`{command['command']}`" in setup
    assert "event_subscriptions.request_url" in setup and "interactivity.request_url" in setup
    for step in (
        "cp .env.example .env",
        "ADMIN_USER_IDS",
        ".venv/bin/avatarbot",
        "PUBLIC_BASE_URL",
    ):
        assert step in setup, step


def test_the_quick_start_is_two_make_targets_and_the_python_it_needs() -> None:
    quick = README[README.index("## Quick start") : README.index("## What you can do")]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("demo", "test"):
        assert f"make {target}" in quick and re.search(rf"^{target}:", makefile, re.M)
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    version = re.search(r'requires-python = ">=(\d+\.\d+)"', pyproject)
    assert version is not None and f"Python ≥ {version.group(1)}" in quick
    assert "npm" in quick  # the Makefile fetches the viewer's LiveKit client with npm

"""Regenerate the README picture `docs/img/slack-answer.png` from the bot's real Block Kit.

The bundled sample documents (`knowledge/sample/`) are indexed into a throwaway knowledge base
(no embedding model: lexical search, the extractive composer), a question is answered, and the
finished answer's blocks come from `bot.slack.blocks.answer_blocks`: the same call
`bot.slack.asking` makes when an answer is done. Those blocks are drawn as a Slack thread (the
asker's question, the bot's reply) in a small HTML page, and headless Debian Chromium, driven
by Playwright, takes the screenshot. Only the asker's question is written here; everything the
bot says is the blocks' text.

    cd /work/main && .venv/bin/python docs/img/render_slack_answer.py

The emoji on the buttons need a colour emoji font (Debian: `fonts-noto-color-emoji`).
"""

from __future__ import annotations

import asyncio
import html
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from playwright.async_api import async_playwright

from bot.slack.blocks import Block, answer_blocks
from knowledge.answering.answer import Answer, Answerer
from knowledge.config import KnowledgeConfig
from knowledge.index import KnowledgeBase

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().with_name("slack-answer.png")
SAMPLE = ROOT / "knowledge" / "sample"
MANIFEST = ROOT / "manifest.yml"

QUESTION = "How do I add documents to the knowledge base?"
BOT_USER = "U0AVATARBOT"  # the mention in the question, drawn as @avatarbot
ANSWER_ID = "Qm9vdHN0cmFw"  # only in the buttons' values, never drawn
LIVE_URL = "https://avatarbot.example.com/live/Qm9vdHN0cmFw"  # only the button's target

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTH = 900


async def real_answer(question: str) -> Answer:
    """The bot's answer to `question` from the sample documents, as the offline bot gives it."""
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase(KnowledgeConfig(data_dir=Path(tmp), embeddings="none"))
        kb.add([SAMPLE])
        return await Answerer(kb).answer(question)


# --- mrkdwn to HTML -----------------------------------------------------------------------

_CODE = re.compile(r"`([^`\n]+)`")
_ANGLE = re.compile(r"<([^<>\s|]+)(?:\|([^<>]*))?>")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")


def mrkdwn_html(text: str) -> str:
    """Slack mrkdwn as HTML: `code`, <url|label> links, <@U…> mentions, *bold*, _italic_,
    ~strike~ and line breaks. Slack text escapes only `&`, `<` and `>` (as entities), so a raw
    `<` opens Slack syntax and every other character is escaped here for HTML."""
    held: list[str] = []

    def hold(fragment: str) -> str:
        held.append(fragment)
        return f"\x00{len(held) - 1}\x00"

    def text_html(raw: str) -> str:  # Slack's entities back to characters, then HTML-escaped
        return html.escape(html.unescape(raw))

    def code(m: re.Match[str]) -> str:
        return hold(f"<code>{text_html(m.group(1))}</code>")

    def angle(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if target.startswith("@"):
            name = "avatarbot" if target[1:] == BOT_USER else target[1:]
            return hold(f'<span class="mention">@{html.escape(name)}</span>')
        shown = text_html(label if label is not None else target)
        return hold(f'<a href="{html.escape(html.unescape(target))}">{shown}</a>')

    out = _ANGLE.sub(angle, _CODE.sub(code, text))
    out = text_html(out)
    out = _BOLD.sub(r"<b>\1</b>", out)
    out = _ITALIC.sub(r"<i>\1</i>", out)
    out = _STRIKE.sub(r"<s>\1</s>", out)
    out = out.replace("\n", "<br>")
    return re.sub(r"\x00(\d+)\x00", lambda m: held[int(m.group(1))], out)


# --- Block Kit to HTML --------------------------------------------------------------------


def _element_text(element: dict[str, Any]) -> str:
    if element.get("type") == "plain_text":
        return html.escape(element["text"])
    return mrkdwn_html(element["text"])


def _button(button: dict[str, Any]) -> str:
    style = f" {button['style']}" if button.get("style") in ("primary", "danger") else ""
    return f'<span class="button{style}">{_element_text(button["text"])}</span>'


def _feedback(element: dict[str, Any]) -> str:
    buttons = [element["positive_button"], element["negative_button"]]
    return "".join(
        f'<span class="feedback" title="{html.escape(b.get("accessibility_label", ""))}">'
        f"{_element_text(b['text'])}</span>"
        for b in buttons
    )


def block_html(block: Block) -> str:
    kind = block["type"]
    if kind == "section":
        return f'<div class="section">{_element_text(block["text"])}</div>'
    if kind == "context":
        parts = " ".join(_element_text(e) for e in block["elements"])
        return f'<div class="context">{parts}</div>'
    if kind == "actions":
        return '<div class="actions">' + "".join(_button(e) for e in block["elements"]) + "</div>"
    if kind == "context_actions":
        parts = "".join(
            _feedback(e) if e["type"] == "feedback_buttons" else _button(e)
            for e in block["elements"]
        )
        return f'<div class="context-actions">{parts}</div>'
    if kind == "divider":
        return "<hr>"
    raise ValueError(f"no drawing for a {kind} block")


# --- the page -----------------------------------------------------------------------------

CSS = """
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: #1d1c1d;
  font: 15px/1.46668 Lato, "Liberation Sans", "DejaVu Sans", Arial, "Noto Color Emoji",
  sans-serif; -webkit-font-smoothing: antialiased; }
#thread { width: 100%; background: #fff; padding-bottom: 12px; }
.header { display: flex; align-items: baseline; gap: 8px; padding: 14px 20px;
  border-bottom: 1px solid #e2e2e2; }
.header .title { font-weight: 900; font-size: 18px; }
.header .channel { color: #616061; font-size: 13px; }
.message { display: flex; gap: 8px; padding: 8px 20px; }
.avatar { flex: none; width: 36px; height: 36px; border-radius: 6px; margin-top: 4px;
  display: flex; align-items: center; justify-content: center; color: #fff;
  font-weight: 700; font-size: 17px; }
.body { min-width: 0; flex: 1; }
.who { display: flex; align-items: baseline; gap: 6px; }
.name { font-weight: 900; }
.app { background: rgba(29,28,29,.13); color: rgba(29,28,29,.7); font-size: 10px;
  font-weight: 700; padding: 1px 3px; border-radius: 2px; letter-spacing: .2px; }
.time { color: #616061; font-size: 12px; }
.replies { display: flex; align-items: center; gap: 12px; padding: 4px 20px;
  color: #616061; font-size: 13px; }
.replies::after { content: ""; flex: 1; border-top: 1px solid #e2e2e2; }
.section { margin: 2px 0 4px; overflow-wrap: anywhere; }
.context { color: #616061; font-size: 12px; margin: 4px 0; }
.actions { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0 4px; }
.button { display: inline-flex; align-items: center; height: 28px; padding: 0 12px;
  border: 1px solid rgba(29,28,29,.3); border-radius: 8px; font-size: 13px;
  font-weight: 700; background: #fff; }
.button.primary { background: #007a5a; color: #fff; border-color: #007a5a; }
.button.danger { color: #e01e5a; }
.context-actions { display: flex; gap: 4px; margin: 6px 0 2px; }
.feedback { display: inline-flex; align-items: center; justify-content: center;
  width: 28px; height: 24px; border: 1px solid rgba(29,28,29,.2); border-radius: 6px;
  font-size: 13px; background: #fff; }
code { font: 12px/1.5 "Liberation Mono", "DejaVu Sans Mono", monospace; color: #c01343;
  background: rgba(29,28,29,.04); border: 1px solid rgba(29,28,29,.13);
  border-radius: 3px; padding: 1px 3px; }
a { color: #1264a3; text-decoration: none; }
.mention { color: #1264a3; background: rgba(29,155,209,.1); border-radius: 3px;
  padding: 0 2px; font-weight: 400; }
"""


def message_html(name: str, initial: str, colour: str, time: str, inner: str, app: bool) -> str:
    badge = '<span class="app">APP</span>' if app else ""
    return (
        '<div class="message">'
        f'<div class="avatar" style="background:{colour}">{html.escape(initial)}</div>'
        f'<div class="body"><div class="who"><span class="name">{html.escape(name)}</span>'
        f'{badge}<span class="time">{time}</span></div>{inner}</div></div>'
    )


def page_html(question_mrkdwn: str, blocks: list[Block], bot_colour: str) -> str:
    asked = f'<div class="section">{mrkdwn_html(question_mrkdwn)}</div>'
    reply = "".join(block_html(b) for b in blocks)
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><style>{CSS}</style></head><body>'
        '<div id="thread">'
        '<div class="header"><span class="title">Thread</span>'
        '<span class="channel"># help-docs</span></div>'
        + message_html("Sam Rivera", "S", "#4a8c6f", "10:41 AM", asked, app=False)
        + '<div class="replies">1 reply</div>'
        + message_html("avatarbot", "a", bot_colour, "10:41 AM", reply, app=True)
        + "</div></body></html>"
    )


def bot_colour() -> str:
    """The app's background colour from manifest.yml (its icon's backdrop in Slack)."""
    manifest = yaml.safe_load(MANIFEST.read_text())
    colour = manifest.get("display_information", {}).get("background_color", "#2c2d30")
    return colour if re.fullmatch(r"#[0-9a-fA-F]{6}", str(colour)) else "#2c2d30"


async def screenshot(page_source: str, out: Path) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = await browser.new_page(
                viewport={"width": WIDTH, "height": 200}, device_scale_factor=2
            )
            await page.set_content(page_source, wait_until="load")
            await page.evaluate("document.fonts.ready")
            await page.locator("#thread").screenshot(path=str(out))
        finally:
            await browser.close()


async def main() -> None:
    answer = await real_answer(QUESTION)
    blocks = answer_blocks(answer, ANSWER_ID, live_url=LIVE_URL, video_enabled=True)
    question = f"<@{BOT_USER}> {QUESTION}"
    await screenshot(page_html(question, blocks, bot_colour()), OUT)
    print(f"wrote {OUT.relative_to(ROOT)} ({len(blocks)} blocks, status {answer.status})")


if __name__ == "__main__":
    asyncio.run(main())

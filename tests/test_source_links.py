"""Sources people can open: web URL + anchor, Slack permalink, a datasource's base URL for
files from disk, otherwise no link — never a server path. And who may see a private file."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge import KnowledgeBase, KnowledgeConfig
from knowledge.answering.answer import Answerer
from knowledge.errors import KnowledgeError
from knowledge.index import Upload
from knowledge.models import Document
from knowledge.visibility import Asking

HANDBOOK = (
    "# Expense policy\n\n"
    + "## Travel\n\n"
    + "Book trains rather than flights for trips under six hours. " * 12
    + "\n\n## Receipts\n\n"
    + "Receipts over 25 euros are scanned within 30 days of the purchase. " * 12
    + "\n"
)


def kb_at(tmp_path: Path) -> KnowledgeBase:
    return KnowledgeBase(KnowledgeConfig(data_dir=tmp_path / "kb", embeddings="none"))


async def first_source(kb: KnowledgeBase, question: str, **kw: object) -> object:
    answer = await Answerer(kb).answer(question, **kw)  # type: ignore[arg-type]
    assert answer.sources, answer.text
    return answer.sources[0]


async def test_a_file_from_disk_links_to_its_datasource_base_url(tmp_path: Path) -> None:
    folder = tmp_path / "handbook" / "money"
    folder.mkdir(parents=True)
    (folder / "expenses.md").write_text(HANDBOOK)
    (tmp_path / "handbook" / "intro.md").write_text("# Intro\n\nWelcome to the team handbook.\n")
    kb = kb_at(tmp_path)
    kb.add([tmp_path / "handbook"], datasource="handbook")
    src = await first_source(kb, "When are receipts scanned?")
    assert src.link == ""  # no base URL yet: the title alone
    assert src.number == 1 and src.title == "Expense policy"

    root = kb.set_base_url("handbook", "https://handbook.example.com/docs/")
    assert root == str(tmp_path / "handbook")
    src = await first_source(kb, "When are receipts scanned?")
    assert src.link == "https://handbook.example.com/docs/money/expenses.md#receipts"
    assert str(tmp_path) not in src.link

    with pytest.raises(KnowledgeError, match="http"):
        kb.set_base_url("handbook", "file:///etc/passwd")


async def test_web_pages_keep_url_and_anchor_and_uploads_their_permalink(tmp_path: Path) -> None:
    kb = kb_at(tmp_path)
    page = Document(
        source="https://docs.example.com/guide",
        title="Guide",
        text="# Guide\n\n## Sick leave\n\n"
        + "Report sick leave to your manager before ten. " * 12
        + "\n\n## Vacation days\n\n"
        + "Everyone gets 27 vacation days a year. " * 12,
        format="md",
        url="https://docs.example.com/guide",
        content_hash="h1",
    )
    upload = Upload(
        "parking.md",
        b"# Parking\n\nThe parking garage opens at 6 in the morning.\n",
        source="slack:F1/parking.md",
        url="https://fake.slack.com/files/UADMIN/F1/parking.md",
    )
    kb.add([page, upload])
    src = await first_source(kb, "How many vacation days do I get?")
    assert src.link == "https://docs.example.com/guide#vacation-days"
    src = await first_source(kb, "When does the parking garage open?")
    assert src.link.startswith("https://fake.slack.com/files/UADMIN/F1/parking.md")
    assert src.title == "Parking" and "slack:" not in src.link


async def test_a_file_shared_in_a_dm_answers_only_there_or_where_its_datasource_is_bound(
    tmp_path: Path,
) -> None:
    kb = kb_at(tmp_path)
    kb.add([Upload("hr.md", b"# Salaries\n\nSalary bands are reviewed in March.\n", place="D1")])
    kb.add([Upload("pub.md", b"# Lunch\n\nLunch is served at noon in the canteen.\n")])
    q = "When are salary bands reviewed?"
    here = await Answerer(kb).answer(q, asking=Asking(place="D1"))
    assert here.sources and here.sources[0].title == "Salaries"
    elsewhere = await Answerer(kb).answer(q, asking=Asking(place="C9"))
    assert all(s.title != "Salaries" for s in elsewhere.sources)
    bound = await Answerer(kb).answer(q, asking=Asking(place="C9", bound=("default",)))
    assert bound.sources and bound.sources[0].title == "Salaries"
    lunch = await Answerer(kb).answer("When is lunch served?", asking=Asking(place="C9"))
    assert lunch.sources[0].title == "Lunch"


async def test_a_private_copy_of_a_public_document_does_not_hide_it_elsewhere(
    tmp_path: Path,
) -> None:
    kb = kb_at(tmp_path)
    body = b"# Parking\n\nThe parking garage opens at 6 in the morning.\n"
    kb.add([Upload("parking.md", body, source="slack:F1/parking.md", place="D1")])
    kb.add([Upload("parking.md", body, source="https://intranet.example/parking")])
    q = "When does the parking garage open?"
    elsewhere = await Answerer(kb).answer(q, asking=Asking(place="C9"))
    assert elsewhere.sources and elsewhere.sources[0].title == "Parking"

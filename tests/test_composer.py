"""The extractive composer on real documents: readable, cited, relevant answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from knowledge.answering.composer import compose, prose_units
from knowledge.models import Chunk
from knowledge.sources import load_file
from tests.knowledge_hits import EVAL_CORPUS, SAMPLE, hits, sections


def cited_text(answer: str, number: int) -> str:
    """The answer text that ends with citation `[number]`, back to the previous citation."""
    before = answer.split(f"[{number}]")[0]
    return re.split(r"\[\d+\]\.?", before)[-1]


def assert_readable(text: str) -> None:
    assert text and (text[0].isupper() or text[0] == "`")
    assert text.rstrip().endswith((".", "!", "?"))
    for noise in ("#", "```", "|", "](", "<", "{#"):
        assert noise not in text, f"markup {noise!r} left in: {text}"
    assert len(text) <= 800


def test_how_to_add_documents_is_answered_from_the_right_section() -> None:
    loading = sections(SAMPLE / "loading-knowledge.md")
    asking = sections(SAMPLE / "asking-questions.md")
    privacy = sections(SAMPLE / "privacy-and-secrets.html")
    ranked = hits(
        asking["When the bot does not know"],
        loading["Add documents from the command line"],
        privacy["What the bot stores"],
    )
    result = compose("How do I add documents to the knowledge base?", ranked)
    assert_readable(result.text)
    assert "avatarbot knowledge add" in result.text
    number = next(n for n, i in enumerate(result.cited, 1) if i == 1)
    assert "avatarbot knowledge add" in cited_text(result.text, number)
    # Sentences about other things are not dragged in from the distractors.
    assert "ANSWER_MIN_SCORE" not in result.text


def test_every_citation_points_at_the_passage_its_sentences_came_from() -> None:
    config = sections(SAMPLE / "configuration.rst")
    avatar = sections(SAMPLE / "avatar-delivery.md")
    ranked = hits(config["Answering"], avatar["Answer videos with /ask-video"], config["Storage"])
    result = compose("How long can the spoken answer be, and how do I change the limit?", ranked)
    assert_readable(result.text)
    numbers = [int(n) for n in re.findall(r"\[(\d+)\]", result.text)]
    assert numbers and sorted(set(numbers)) == list(range(1, len(result.cited) + 1))
    for number, hit_index in enumerate(result.cited, 1):
        passage = " ".join(ranked[hit_index].chunk.text.replace("`", "").split())
        for sentence in re.split(r"(?<=[.!?])\s+", cited_text(result.text, number).strip()):
            words = sentence.rstrip(".").replace("`", "").split()[:6]
            assert " ".join(words) in passage
    assert "SPOKEN_MAX_SECONDS" in result.text


def test_a_lead_in_keeps_its_list_of_steps() -> None:
    tool = sections(EVAL_CORPUS / "test-and-evaluate-eval-tool.md")
    result = compose(
        "How can you create multiple test cases for an evaluation in the Evaluation tool?",
        hits(tool["Creating Test Cases"], tool["Understanding Results"]),
    )
    assert_readable(result.text)
    assert "To add more test cases: Click the ‘Add Test Case’ button." in result.text
    assert "Repeat to create multiple scenarios" in result.text
    assert result.cited[0] == 0


@pytest.mark.parametrize(
    ("page", "question", "expected"),
    [
        (
            "build-with-claude-embeddings.md",
            "What embeddings provider does Anthropic recommend for customized domain-specific "
            "models?",
            "Voyage AI",
        ),
        (
            "test-and-evaluate-strengthen-guardrails-reduce-latency.md",
            "How can I reduce latency?",
            "model",
        ),
    ],
)
def test_answers_from_real_web_pages(page: str, question: str, expected: str) -> None:
    ranked = hits(*list(sections(EVAL_CORPUS / page).values())[:6])
    result = compose(question, ranked)
    assert_readable(result.text)
    assert expected in result.text
    assert len(re.findall(r"[.!?](?:\s|$)", result.text)) <= 8


def test_markup_is_turned_into_prose() -> None:
    text = (
        "# Setup\n\n## Tokens {#tokens}\n\n"
        "Create the **bot token** in the [app settings](https://api.slack.com/apps) page.\n\n"
        "| Variable | Meaning |\n|---|---|\n"
        "| SLACK_BOT_TOKEN | The bot token used for the Web API |\n\n"
        "```bash\nexport SLACK_BOT_TOKEN=xoxb-123. # not prose\n```\n\n"
        "- Store the bot token in `.env` and never commit it.\n"
        "- Rotate the bot token when someone leaves.\n"
    )
    units = prose_units(text)
    assert units[0] == "Create the bot token in the app settings page."
    assert "SLACK_BOT_TOKEN – The bot token used for the Web API." in units
    assert not any("export" in u or u == "Setup" for u in units)
    assert "Rotate the bot token when someone leaves." in " ".join(units)


def test_overlapping_chunks_do_not_repeat_a_sentence() -> None:
    text = load_file(SAMPLE / "asking-questions.md", max_bytes=10_000_000).text
    start = text.index("## Follow-up questions")
    first = Chunk(id="a", source="s", title="Asking", text=text[start : start + 420])
    second = Chunk(id="b", source="s", title="Asking", text=text[start + 150 : start + 700])
    result = compose("How do follow-up questions in a thread work?", hits(first, second))
    sentences = re.split(r"(?<=[.!?])\s+", re.sub(r"\s*\[\d+\]", "", result.text))
    assert len(sentences) == len(set(sentences))
    # The second chunk starts mid-sentence; that fragment is not used.
    fragment = " ".join(second.text.split()[:4])
    assert not result.text.startswith(fragment)
    assert fragment[0].islower() or fragment not in result.text


def test_a_question_the_passages_do_not_touch_composes_nothing() -> None:
    loading = sections(SAMPLE / "loading-knowledge.md")
    result = compose("What is the capital of France?", hits(*loading.values()))
    assert result.text == ""
    assert result.cited == ()


def passage(text: str, section: str = "", n: int = 0) -> Chunk:
    return Chunk(
        id=f"p{n}", source="docs/guide.md", title="Guide", section=section, text=text,
        link=f"https://docs.example.com/guide#{n}",
    )  # fmt: skip


def test_a_lead_in_brings_its_bullet_list() -> None:
    text = (
        "## Evaluation metrics\n\n"
        "Some success metrics to consider when evaluating a classifier include:\n\n"
        "- Accuracy: the share of inputs classified correctly\n"
        "- F1 score: the balance between precision and recall\n"
        "- Latency: the time to return a label\n\n"
        "Pick the metrics before you write the prompt.\n"
    )
    result = compose(
        "What success metrics should I use to evaluate a classifier?", hits(passage(text))
    )
    assert_readable(result.text)
    assert "include: Accuracy: the share of inputs classified correctly." in result.text
    assert "Latency: the time to return a label [1]." in result.text


def test_a_lead_in_whose_list_is_missing_is_dropped() -> None:
    # The chunk ends where the list began: the list is in another chunk that was not found.
    cut = passage(
        "## Evaluation metrics\n\n"
        "Some success metrics to consider evaluating Claude’s performance on a classification "
        "task include:"
    )
    other = passage(
        "Accuracy on a held-out test set is the main success metric for classification. "
        "Measure it before and after every prompt change.",
        n=1,
    )
    result = compose(
        "What are key success metrics for evaluating performance on a classification task?",
        hits(cut, other),
    )
    assert_readable(result.text)
    assert "include" not in result.text
    assert not re.search(r"[:,]\s*\[\d+\]|\binclude\s*\[\d+\]", result.text)  # nothing dangles
    assert "Accuracy on a held-out test set" in result.text


def test_a_lead_in_brings_its_table_as_a_short_list() -> None:
    text = (
        "Some success metrics to consider for a classifier include:\n\n"
        "| Metric | Description |\n|---|---|\n"
        "| Accuracy | The output exactly matches the golden answer or correctly classifies the "
        "input according to the task's requirements. |\n"
        "| F1 score | The output optimally balances precision and recall across all classes. |\n"
        "| Consistency | The output is consistent with its predictions for similar inputs. |\n"
        "| Speed | The model responds within the acceptable time limit for the task. |\n"
    )
    result = compose(
        "What success metrics should I consider for a classifier?", hits(passage(text))
    )
    assert_readable(result.text)
    # Long rows become their first column: what a reader scans for.
    assert "include: Accuracy, F1 score, Consistency and Speed [1]." in result.text
    assert "Metric" not in result.text  # the header row is not an item


def test_navigation_runs_are_not_answers() -> None:
    # The foot of a flattened web page: a link list, the page's table of contents as one
    # line, then the same run glued together.
    nav = passage(
        "## Further information\n\n"
        "For more information, see the marketplace overview page.\n"
        "- [Why chain prompts?](/chain#why)\n"
        "- [How to chain prompts](/chain#how)\n"
        "Why use Claude for Sheets? Get started with Claude for Sheets Install Claude for "
        "Sheets Enter your first prompt Advanced use Prompt engineering workflow "
        "Troubleshooting Further information\n"
        "Why use Claude for Sheets?Get started with Claude for SheetsInstall Claude for Sheets\n"
    )
    prose = passage(
        "## Prompt engineering workflow\n\n"
        "The Claude for Sheets workbook lets you test many prompts side by side, so you can "
        "compare prompt variations without chaining calls by hand.\n",
        n=1,
    )
    result = compose(
        "How can Claude for Sheets improve prompt engineering workflows compared to chained "
        "prompts?",
        hits(nav, prose),
    )
    assert_readable(result.text)
    for label in ("Get started with", "Install Claude for Sheets", "How to chain prompts"):
        assert label not in result.text
    assert result.text.startswith("The Claude for Sheets workbook lets you test many prompts")


def test_code_never_reaches_the_answer() -> None:
    # A page whose code fences were lost, and a chunk cut inside a fenced block.
    page = passage(
        "With Text Completions, the generated text is returned in the completion value of "
        "the response:\n"
        "Python>>> response = anthropic.completions.create(...)\n"
        ">>> response.completion\n"
        '" Hi, I\'m Claude"\n'
        "Errors can arrive in the stream as well:\n"
        "Example errorevent: completion\n"
        'data: {"completion": " Hello", "stop_reason": null}\n'
        "event: error\n"
        "The completion value holds only the new text and never repeats the prompt.\n"
    )
    inside = passage(
        "# Missing turns\n"
        'prompt = "Hello, world"\n\n'
        "# Assistant turn is not last\n"
        'prompt = "\\n\\nHuman: Hello, Claude\\n\\nAssistant: Hello, world\\n\\nHuman: Hi?"\n',
        n=1,
    )
    result = compose(
        "Does the completion value of a Text Completions response repeat the prompt?",
        hits(inside, page),
    )
    assert_readable(result.text)
    for code in (">>>", "prompt =", "create(", '"Hello, world"', "data:", "event:"):
        assert code not in result.text
    assert "The completion value holds only the new text" in result.text
    assert not re.search(r"\([^)]*\[\d+\]", result.text)  # no citation inside brackets


def test_a_citation_follows_a_closing_bracket() -> None:
    text = "Keep images small for speed (resize them to about 1.15 megapixels.)\n"
    result = compose("How small should images be for speed?", hits(passage(text)))
    assert result.text.endswith("megapixels.) [1]")


def test_a_heading_glued_to_its_paragraph_is_separated() -> None:
    text = (
        "Role namesThe Text Completions API expects alternating Human and Assistant turns, "
        "but the Messages API expects user and assistant roles.\n"
        "System prompt With Text Completions, the system prompt is the text before the first "
        "Human turn.\n"
    )
    result = compose(
        "What roles does the Text Completions API expect compared to the Messages API?",
        hits(passage(text)),
    )
    assert_readable(result.text)
    assert result.text.startswith("The Text Completions API expects alternating Human")
    assert "Role names" not in result.text
    assert not re.search(r"[a-z][A-Z][a-z]", result.text)  # nothing glued
    # Card labels run into their descriptions on a flattened page, and numbered steps.
    assert prose_units(
        "GitHub tutorialAn example-filled tutorial covering our docs.Sheets tutorialA lighter "
        "version of the tutorial in a spreadsheet."
    ) == [
        "An example-filled tutorial covering our docs.",
        "A lighter version of the tutorial in a spreadsheet.",
    ]
    assert prose_units("Use tools in these steps:\n1Define the tools\n2Send a prompt") == [
        "Use tools in these steps: Define the tools. Send a prompt."
    ]
    assert prose_units("Task fidelity How well does the model need to perform on the task?") == [
        "How well does the model need to perform on the task?"
    ]
    assert prose_units(
        "Tone and style - Likert scale Tone and style - Likert scale What it measures: how "
        "polite the answer sounds to a customer."
    ) == ["What it measures: how polite the answer sounds to a customer."]
    # Escapes are not glue; a flattened table's cells glued to numbers are cut apart.
    assert prose_units("It expects alternating \\n\\nHuman: and \\n\\nAssistant: turns.") == [
        "It expects alternating \\n\\nHuman: and \\n\\nAssistant: turns."
    ]
    assert prose_units("voyage-2160001536Voyage is the most powerful generalist model.") == [
        "Voyage is the most powerful generalist model."
    ]
    # Product names keep their capitals.
    assert prose_units("See the GitHub and JavaScript guides for the full walkthrough.") == [
        "See the GitHub and JavaScript guides for the full walkthrough."
    ]


def _passage(text: str, n: int = 0, title: str = "Handbook") -> Chunk:
    return Chunk(id=f"p{n}", source=f"p{n}.md", title=title, text=text)


def test_a_sentence_is_chosen_with_the_neighbour_that_names_the_answer() -> None:
    # The question's words are in the first sentence; the answer (a name) is in the next.
    page = _passage(
        "Pricing is billed per seat every month. Anthropic does not offer its own embedding "
        "model for domain-specific search. One embeddings provider that covers all of these "
        "needs is Voyage AI. Invoices are sent by email at the start of each month."
    )
    other = _passage(
        "Domain adaptation: models adapt easily to new domains with few examples.", n=1
    )
    result = compose(
        "Which embeddings provider does Anthropic recommend for domain-specific models?",
        hits(page, other),
    )
    assert "Voyage AI" in result.text
    assert "Invoices" not in result.text and "Pricing" not in result.text
    assert result.cited == (0,)  # the weakly related passage is not cited as padding


def test_the_embedding_finds_a_sentence_that_shares_no_word_with_the_question(
    models_dir: Path,
) -> None:
    from knowledge.retrieval.embeddings import make_embedder

    embedder = make_embedder("onnx-minilm", models_dir)
    assert embedder is not None
    page = _passage(
        "Our office plants are watered on Fridays. Staff may work from home two days a week, "
        "with their manager's agreement. The car park closes at nine in the evening."
    )
    question = "What is the remote work policy for employees?"
    with_meaning = compose(question, hits(page), embed=embedder.embed_documents)
    assert "work from home two days a week" in with_meaning.text
    assert "plants" not in with_meaning.text and "car park" not in with_meaning.text


def test_once_the_question_is_answered_a_looser_sentence_is_not_added() -> None:
    # The first sentence answers the whole question; the next is about the same key, less
    # closely: the answer stops rather than grow.
    page = _passage(
        "To rotate the signing key for webhooks, open the admin console, choose Webhooks, press "
        "Rotate signing key and paste the new key into every service that verifies the requests. "
        "During a rotation the old signing key stays valid for a day. "
        "Deliveries are retried three times, a minute apart, before they give up."
    )
    other = _passage(
        "Invoices are sent by email at the start of each month. The admin console lists every "
        "team member with their role. Support answers within one working day.",
        n=1,
    )
    result = compose("How do I rotate the signing key for webhooks?", hits(page, other))
    assert "Rotate signing key" in result.text
    assert "During a rotation" not in result.text and "retried" not in result.text
    assert result.cited == (0,)


def test_code_tab_labels_and_shell_exports_are_not_read_out() -> None:
    # A flattened docs page: each snippet is preceded by its tab's label ("Python").
    page = (
        "To access Voyage embeddings:\n\nSign up on the website\nObtain an API key\n"
        "Set the API key as an environment variable for convenience:\n"
        'Pythonexport VOYAGE_API_KEY=""\nPython\nPython\n'
        "You can run the embeddings with the official package or HTTP requests."
    )
    units = prose_units(page)
    assert units == [
        "To access Voyage embeddings: Sign up on the website. Obtain an API key.",
        "You can run the embeddings with the official package or HTTP requests.",
    ]


def test_the_answer_is_the_best_passage_from_its_lead_on() -> None:
    # Support pages answer at the start of a section, in sentences that follow each other:
    # the answer reads them in order, and not the later passage that repeats a word.
    page = _passage(
        "Refunds are issued within five days of the request. A refund goes back to the card "
        "that paid, and a receipt is sent by email. Office hours are nine to five."
    )
    other = _passage("Refunds for gift cards are not possible in any shop.", n=1)
    result = compose(
        "hi! we were charged twice last month. how do refunds work?", hits(page, other)
    )
    assert result.text.startswith("Refunds are issued within five days")
    assert "A refund goes back to the card that paid" in result.text
    assert "Office hours" not in result.text and "gift cards" not in result.text
    assert result.cited == (0,)


def test_another_passage_is_added_when_it_answers_what_the_span_does_not() -> None:
    invoices = _passage("To export invoices, open Billing and choose Download all as CSV.")
    deletion = _passage(
        "To delete your account, write to the owner of the workspace; deletion is final.", n=1
    )
    result = compose(
        "How do I export invoices, and how do I delete my account?", hits(invoices, deletion)
    )
    assert "Download all as CSV" in result.text and "write to the owner" in result.text
    assert result.cited == (0, 1)


def test_steps_are_kept_whole_in_their_order() -> None:
    page = _passage(
        "To rotate the signing key:\n\n1. Open the admin page.\n2. Choose Rotate key.\n"
        "3. Copy the new key into the SIGNING_KEY setting.\n\nKeys never expire on their own."
    )
    result = compose("so how do I rotate the signing key?", hits(page))
    text = result.text
    assert text.index("Open the admin page") < text.index("Choose Rotate key")
    assert text.index("Choose Rotate key") < text.index("Copy the new key")


def _section(text: str, section: str, n: int = 0) -> Chunk:
    return Chunk(id=f"s{n}", source=f"s{n}.md", title="Release notes", section=section, text=text)


def test_an_answer_that_opens_a_section_is_introduced_by_its_heading() -> None:
    # Release notes and step-by-step pages put the date or the step in the heading.
    notes = _section(
        "## June 20th, 2024\n\nThe new model is now available in every region.", "June 20th, 2024"
    )
    result = compose("hey, when did the new model become available?", hits(notes))
    assert result.text == "June 20th, 2024: The new model is now available in every region [1]."
    # A heading the sentence already says adds nothing.
    plain = _section(
        "## Regions\n\nThe new model is available in every region.", "Launch > Regions", n=1
    )
    result = compose("where is the new model available?", hits(plain))
    assert result.text == "The new model is available in every region [1]."

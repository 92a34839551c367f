"""Fusion and near-duplicate removal: pure functions, plain inputs."""

from __future__ import annotations

from knowledge.retrieval.fusion import drop_near_duplicates, reciprocal_rank_fusion


def test_agreement_beats_a_single_first_place() -> None:
    fused = reciprocal_rank_fusion({"dense": ["a", "b", "c"], "lexical": ["b", "d", "a"]})
    assert [doc for doc, _ in fused][:2] == ["b", "a"]
    assert {doc for doc, _ in fused} == {"a", "b", "c", "d"}


def test_weights_shift_the_order() -> None:
    rankings = {"dense": ["a", "b"], "lexical": ["b", "a"]}
    assert reciprocal_rank_fusion(rankings, {"dense": 2.0, "lexical": 1.0})[0][0] == "a"
    assert reciprocal_rank_fusion(rankings, {"dense": 1.0, "lexical": 2.0})[0][0] == "b"


def test_exact_and_near_copies_are_dropped_overlapping_neighbours_kept() -> None:
    base = " ".join(f"word{i}" for i in range(120))
    near_copy = base.replace("word7 ", "changed ")
    neighbour = " ".join(f"word{i}" for i in range(100, 220))  # overlaps 20 words
    items = [
        ("a", base, "page"),
        ("b", base.upper() + "  ", "page"),  # same text, different case and spacing
        ("c", near_copy, "page"),
        ("d", neighbour, "page"),
        ("e", "something else entirely", "page"),
    ]
    assert drop_near_duplicates(items, limit=10) == ["a", "d", "e"]
    assert drop_near_duplicates(items, limit=2) == ["a", "d"]


def test_a_page_is_never_dropped_for_boilerplate_another_page_carries() -> None:
    footer = " ".join(f"footer{i}" for i in range(100))  # "Was this article helpful? …"
    items = [
        ("refunds:0", "Refunds take five days. " + footer, "refunds.md"),
        ("invoices:0", "Invoices are sent monthly. " + footer, "invoices.md"),
        ("invoices:1", "Invoices are sent monthly. " + footer, "invoices.md"),  # same page
        ("shared:0", footer, "shared.md"),
        ("shared-copy:0", footer, "other.md"),
    ]
    kept = drop_near_duplicates(items, limit=10)
    assert kept == ["refunds:0", "invoices:0", "shared:0", "shared-copy:0"]

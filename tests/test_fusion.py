"""Fusion and near-duplicate removal: pure functions, plain inputs."""

from __future__ import annotations

from knowledge.fusion import drop_near_duplicates, reciprocal_rank_fusion


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
        ("a", base),
        ("b", base.upper() + "  "),  # same text, different case and spacing
        ("c", near_copy),
        ("d", neighbour),
        ("e", "something else entirely"),
    ]
    assert drop_near_duplicates(items, limit=10) == ["a", "d", "e"]
    assert drop_near_duplicates(items, limit=2) == ["a", "d"]

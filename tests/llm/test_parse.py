"""Permutation parsing: garbage in, a valid permutation and a counted repair out."""
import pytest

from rerank_lab.llm.parse import alpha_label, parse_permutation


def is_permutation(order, n):
    return sorted(order) == list(range(n))


def test_clean_output_needs_no_repair():
    parsed = parse_permutation("[3] > [1] > [2]", 3)
    assert parsed.order == [2, 0, 1]
    assert not parsed.repairs.any


@pytest.mark.parametrize("text, n, expected_order, field", [
    ("The most relevant passage is clearly the one about cats.", 3, [0, 1, 2], "empty"),
    ("", 4, [0, 1, 2, 3], "empty"),
    ("[2] > [2] > [1] > [2] > [3]", 3, [1, 0, 2], "duplicates"),
    ("[7] > [2] > [0] > [1] > [3]", 3, [1, 0, 2], "out_of_range"),
    ("[4] > [2] > [", 5, [3, 1, 0, 2, 4], "missing"),             # truncated list
    ("Ranking: passage 2 is best, then 1.", 3, [1, 0, 2], "missing"),  # prose with numbers
])
def test_garbage_is_repaired_and_counted(text, n, expected_order, field):
    parsed = parse_permutation(text, n)
    assert is_permutation(parsed.order, n)
    assert parsed.order == expected_order
    assert getattr(parsed.repairs, field) > 0
    assert parsed.repairs.total > 0


def test_repair_counts_are_exact():
    parsed = parse_permutation("[2] > [2] > [9] > [1]", 4)
    assert parsed.order == [1, 0, 2, 3]
    assert (parsed.repairs.duplicates, parsed.repairs.out_of_range, parsed.repairs.missing) == (1, 1, 2)
    assert parsed.repairs.as_counters()["parse_missing"] == 2


@pytest.mark.parametrize("text", [None, "[", "]]]>>>", "[-1] > [1.5] > [１]", "🙂" * 50, "[" * 1000, "9" * 400])
def test_never_raises(text):
    parsed = parse_permutation(text, 6)
    assert is_permutation(parsed.order, 6)


def test_zero_passages():
    parsed = parse_permutation("[1] > [2]", 0)
    assert parsed.order == [] and parsed.repairs.out_of_range == 2 and parsed.repairs.empty == 0


def test_alpha_labels():
    assert [alpha_label(i) for i in (0, 1, 25, 26)] == ["A", "B", "Z", "AA"]
    parsed = parse_permutation("[C] > [A] > [C] > [Q] I think", 3, alpha=True)
    assert parsed.order == [2, 0, 1]
    assert (parsed.repairs.duplicates, parsed.repairs.out_of_range, parsed.repairs.missing) == (1, 1, 1)
    # a bare capital in prose is not a label
    assert parsed.order == parse_permutation("A [C] > [A]", 3, alpha=True).order

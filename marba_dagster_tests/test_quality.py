"""core.quality: the one wording of every data-quality check."""

from marba_dagster.core.quality import NAMED_EXAMPLES, describe_problems

TEXT = {"too_big": "too big", "too_small": "too small"}


def name(example):
    return example["id"]


def test_clean_rows_read_as_valid_with_the_domain_word():
    assert (
        describe_problems(4, {"too_big": 0}, [], noun="row", problem_text=TEXT, example_name=name)
        == "4 row(s) valid"
    )
    assert (
        describe_problems(
            4, {}, [], noun="row", problem_text=TEXT, example_name=name, ok_word="consistent"
        )
        == "4 row(s) consistent"
    )


def test_problems_are_counted_named_and_a_few_examples_shown_once_each():
    examples = [{"id": f"r{i}"} for i in (1, 1, 2, 3, 4, 5)]
    text = describe_problems(
        9,
        {"too_big": 2, "too_small": 3, "unused": 0},
        examples,
        noun="row",
        problem_text=TEXT,
        example_name=name,
    )
    assert text == "5 problem(s) in 9 row(s): 2 too big, 3 too small (e.g. r1, r2, r3)"
    assert NAMED_EXAMPLES == 3


def test_problems_without_examples_have_no_empty_parenthesis():
    text = describe_problems(
        2, {"too_big": 1}, [], noun="row", problem_text=TEXT, example_name=name
    )
    assert text == "1 problem(s) in 2 row(s): 1 too big"

"""The one table printer every command uses."""

from splitcomp_tools.cli import format_table


def test_columns_are_padded_to_the_widest_cell_names_left_figures_right():
    text = format_table(["cut", "bytes"], [["a", "7,840"], ["longer", 12]])
    assert text.splitlines() == ["cut     bytes", "a       7,840", "longer     12"]


def test_left_columns_are_chosen_and_trailing_spaces_stripped():
    text = format_table(["n", "name", ""], [[1, "x", ""]], left=(1, 2))
    assert text.splitlines() == ["n  name", "1  x"]

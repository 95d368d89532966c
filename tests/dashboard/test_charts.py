from dashboard.charts import Series, lines, nice_ceiling, stacked_bars


def test_axis_tops_are_round_numbers():
    assert [nice_ceiling(v) for v in (0, 0.3, 1, 3, 7, 12, 99, 101)] == [
        1,
        0.5,
        1,
        5,
        10,
        20,
        100,
        200,
    ]


def test_stacked_bars_stack_series_bottom_up_and_skip_empty_values():
    chart = stacked_bars(
        "t", ["a", "b"], [Series("ok", [3, None], "s-ok"), Series("bad", [1, 2], "s-bad")]
    )
    first, second, third = chart.bars
    assert first.y + first.height == chart.plot_bottom  # "ok" starts on the axis
    assert second.y + second.height == first.y  # "bad" sits on it
    assert third.css == "s-bad"
    assert first.height == 3 * second.height
    assert "a: 3 ok" in first.title
    assert chart.y_ticks[-1].label == "5"


def test_lines_break_where_values_are_missing():
    chart = lines(
        "t", ["1", "2", "3", "4"], [Series("p95", [1.0, None, 2.0, 3.0], "s-p95")], unit="s"
    )
    [line] = chart.lines
    assert len(line.segments) == 2
    assert len(line.dots) == 3
    assert chart.rows[1] == ("2", ["\u2013"])
    assert chart.rows[0] == ("1", ["1.00 s"])


def test_a_chart_without_any_value_is_empty_but_zero_is_data():
    assert stacked_bars("t", ["a"], [Series("x", [None], "c")]).empty
    assert not stacked_bars("t", ["a"], [Series("x", [0.0], "c")]).empty

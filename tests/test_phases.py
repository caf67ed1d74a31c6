"""probe.phases: transition windows of hand-made curves."""

import math

import numpy as np
import pytest

from probe.phases import crossing, steepest_window, transition


def test_a_step_function_has_a_window_one_record_wide():
    steps = np.arange(0, 110, 10)
    values = np.where(steps >= 50, 1.0, 0.0)
    t = transition(steps, values)
    assert (t.start, t.end) == (0.0, 1.0)
    # linear interpolation between step 40 (0) and 50 (1): 10% at 41, half at 45, 90% at 49
    assert t.t_low == pytest.approx(41) and t.t_mid == pytest.approx(45) and t.t_high == pytest.approx(49)
    assert t.width == pytest.approx(8) and t.change == 1.0


def test_a_linear_ramp_and_a_falling_curve():
    steps = np.arange(0, 101, 1)
    ramp = transition(steps, steps / 100, tail=0.01)
    assert (ramp.t_low, ramp.t_mid, ramp.t_high) == pytest.approx((10, 50, 90))
    fall = transition(steps, 2 - steps / 50, tail=0.01)  # from 2 down to 0
    assert fall.change == pytest.approx(-2) and (fall.t_low, fall.t_mid, fall.t_high) == pytest.approx((10, 50, 90))


def test_the_end_value_is_the_mean_of_the_tail_and_the_first_crossing_counts():
    steps = np.arange(10)
    values = np.array([0, 0, 1.2, 0.2, 1, 1, 1, 1, 0.9, 1.1])  # an early spike crosses first
    t = transition(steps, values, tail=0.2)
    assert t.end == pytest.approx(1.0) and t.t_mid == pytest.approx(1 + 0.5 / 1.2)


def test_no_change_and_never_crossing_give_nan():
    t = transition([0, 1, 2], [0.5, 0.5, 0.5])
    assert math.isnan(t.t_mid) and math.isnan(t.width)
    assert math.isnan(crossing(np.array([0, 1]), np.array([0.0, 0.2]), 0.5, rising=True))


@pytest.mark.parametrize("steps, values, match", [
    ([0], [1.0], "length >= 2"),
    ([0, 1], [1.0, float("nan")], "NaN"),
    ([1, 0], [0.0, 1.0], "increase"),
])
def test_bad_input(steps, values, match):
    with pytest.raises(ValueError, match=match):
        transition(steps, values)


def test_steepest_window_finds_the_jump_and_its_share():
    steps = np.arange(0, 1001, 10)
    jump = np.clip((steps - 300) / 100, 0, 1) * 0.6 + np.clip((steps - 600) / 300, 0, 1) * 0.2  # jump, then a tail
    w = steepest_window(steps, jump, width=100, tail=0.05)
    assert (w.t_start, w.t_end) == (300, 400) and w.change == pytest.approx(0.6) and w.total == pytest.approx(0.8)
    assert w.share == pytest.approx(0.75) and w.center == 350
    ramp = steepest_window(steps, steps / 1000, width=100, tail=0.01)
    assert ramp.share == pytest.approx(0.1)  # a linear ramp: a tenth of the change in a tenth of the time
    fall = steepest_window(steps, 1 - jump, width=100, tail=0.05)
    assert fall.t_start == 300 and fall.change == pytest.approx(-0.6) and fall.share == pytest.approx(0.75)


def test_steepest_window_interpolates_between_records_and_checks_width():
    w = steepest_window([0, 10, 20, 30], [0.0, 0.0, 1.0, 1.0], width=5, tail=0.25)
    assert w.t_start == 10 and w.change == pytest.approx(0.5)
    with pytest.raises(ValueError, match="width=40"):
        steepest_window([0, 10, 20, 30], [0.0, 0.0, 1.0, 1.0], width=40)

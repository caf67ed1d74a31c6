import math

import pytest

from probe.train.schedules import make_schedule


def test_inverse_sqrt_matches_2017_formula():
    d_model, warmup = 512, 40
    fn = make_schedule("inverse_sqrt", total=1000, warmup=warmup)
    paper = [d_model**-0.5 * min(s**-0.5, s * warmup**-1.5) for s in range(1, 400)]
    peak = d_model**-0.5 * warmup**-0.5
    for step, value in enumerate(paper):
        assert fn(step) == pytest.approx(value / peak, rel=1e-9)
    assert max(fn(s) for s in range(400)) == pytest.approx(1.0)


def test_linear_and_cosine_end_points():
    lin = make_schedule("linear", total=110, warmup=10, min_ratio=0.1)
    cos = make_schedule("cosine", total=110, warmup=10, min_ratio=0.0)
    assert lin(0) == pytest.approx(0.1) and lin(9) == pytest.approx(1.0)
    assert lin(60) == pytest.approx(1 - 0.9 * 0.5) and lin(110) == pytest.approx(0.1)
    assert cos(60) == pytest.approx(0.5) and cos(110) == pytest.approx(0.0, abs=1e-12)
    assert all(cos(s) >= cos(s + 1) for s in range(10, 110))
    assert make_schedule("constant", total=5)(3) == 1.0


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "step"}, "schedule='step'"),
    ({"name": "inverse_sqrt", "warmup": 0}, "warmup_steps"),
    ({"name": "linear", "min_ratio": 2.0}, "min_lr_ratio"),
])
def test_bad_schedule_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_schedule(total=10, **kwargs)


def test_cosine_is_half_cosine():
    fn = make_schedule("cosine", total=100, warmup=0, min_ratio=0.2)
    assert fn(25) == pytest.approx(0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * 0.25)))

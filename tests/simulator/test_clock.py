"""The virtual clock: scaled monotonic time plus jumps, never backwards; driven through an injected
monotonic function (no sleeps) and through the simulator's ``/__sim__/clock`` endpoints."""

from __future__ import annotations

import pytest
from helpers import call

from bulk_engine.simulator import SimulatorConfig, SimulatorThread
from bulk_engine.simulator.clock import VirtualClock

START = 1_790_000_000.0


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 500.0  # an arbitrary origin: only differences matter

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize(
    ("scale", "wall_s", "virtual_s"),
    [(1.0, 10.0, 10.0), (60.0, 1.0, 60.0), (3600.0, 1.0, 3600.0), (3600.0, 0.25, 900.0), (0.5, 4.0, 2.0)],
)
def test_time_scale_multiplies_wall_time(scale: float, wall_s: float, virtual_s: float) -> None:
    mono = FakeMonotonic()
    clock = VirtualClock(START, scale, monotonic=mono)
    assert clock.now() == START
    mono.t += wall_s
    assert clock.now() == pytest.approx(START + virtual_s)
    assert clock.real_seconds(virtual_s) == pytest.approx(wall_s)
    assert clock.virtual_seconds(wall_s) == pytest.approx(virtual_s)


def test_an_hour_passes_in_a_second_at_scale_3600() -> None:
    mono = FakeMonotonic()
    clock = VirtualClock(START, 3600.0, monotonic=mono)
    mono.t += 1.0
    assert clock.now() - START == pytest.approx(3600.0)


def test_advance_adds_to_scaled_time() -> None:
    mono = FakeMonotonic()
    clock = VirtualClock(START, 10.0, monotonic=mono)
    assert clock.advance(100.0) == START + 100.0
    mono.t += 2.0
    assert clock.now() == pytest.approx(START + 120.0)
    assert clock.advance(0.0) == pytest.approx(START + 120.0)


def test_never_goes_backwards() -> None:
    mono = FakeMonotonic()
    clock = VirtualClock(START, 1.0, monotonic=mono)
    with pytest.raises(ValueError):
        clock.advance(-1.0)
    mono.t += 5.0
    later = clock.now()
    mono.t -= 3.0  # a misbehaving source
    assert clock.now() == later


@pytest.mark.parametrize("scale", [0.0, -1.0])
def test_time_scale_must_be_positive(scale: float) -> None:
    with pytest.raises(ValueError):
        VirtualClock(START, scale, monotonic=FakeMonotonic())
    with pytest.raises(ValueError):
        VirtualClock(START, 1.0, monotonic=FakeMonotonic()).set_time_scale(scale)


def test_set_time_scale_changes_the_rate_without_a_jump() -> None:
    mono = FakeMonotonic()
    clock = VirtualClock(START, 1.0, monotonic=mono)
    mono.t += 10.0
    clock.advance(5.0)
    clock.set_time_scale(100.0)
    assert clock.time_scale == 100.0
    assert clock.now() == pytest.approx(START + 15.0)
    mono.t += 1.0
    assert clock.now() == pytest.approx(START + 115.0)


def test_simulator_config_rejects_a_non_positive_scale() -> None:
    with pytest.raises(ValueError):
        SimulatorConfig(time_scale=0)


def test_simulator_clock_endpoints(graph_simulator: SimulatorThread) -> None:
    url = graph_simulator.url
    first = call(url, "GET", "/__sim__/clock").body
    assert first["time_scale"] == 1.0
    assert first["now"] >= START
    jumped = call(url, "POST", "/__sim__/clock/advance", json_body={"seconds": 7200}).body["now"]
    assert jumped >= first["now"] + 7200
    assert graph_simulator.run(lambda core: core.clock.now()) >= jumped
    for bad in ({"seconds": -5}, {"seconds": "soon"}):
        assert call(url, "POST", "/__sim__/clock/advance", json_body=bad).status == 400


@pytest.mark.parametrize("graph_simulator_config", [SimulatorConfig(time_scale=3600.0)])
def test_simulator_runs_at_the_configured_scale(graph_simulator: SimulatorThread) -> None:
    assert call(graph_simulator.url, "GET", "/__sim__/clock").body["time_scale"] == 3600.0
    assert graph_simulator.run(lambda core: core.clock.time_scale) == 3600.0

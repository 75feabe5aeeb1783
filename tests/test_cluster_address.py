"""`--ray local` starts a cluster of the batch's own, whatever else runs on the machine: Ray's
``init()`` without an address joins the cluster named by ``RAY_ADDRESS`` (or the one `ray start`
left on the machine), another course's or another run's, so two runs would share one."""

from __future__ import annotations

from typing import Any

from grader.grading import cluster


class FakeRay:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def is_initialized(self) -> bool:
        return False

    def init(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


def test_local_starts_a_cluster_of_its_own_even_where_ray_address_names_another(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")
    fake = FakeRay()
    monkeypatch.setattr(cluster, "_ray", lambda: fake)
    cluster.RayExecutor("local")._connect()
    assert [call["address"] for call in fake.calls] == ["local"]


def test_an_address_given_is_the_cluster_joined(monkeypatch):
    fake = FakeRay()
    monkeypatch.setattr(cluster, "_ray", lambda: fake)
    cluster.RayExecutor("ray://head:10001")._connect()
    assert [call["address"] for call in fake.calls] == ["ray://head:10001"]

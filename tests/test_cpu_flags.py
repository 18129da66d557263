"""genviews' XLA:CPU flags are added to $XLA_FLAGS, never over a user's own setting."""

from __future__ import annotations

from tasks import parallel


def test_flags_are_added_and_the_users_own_are_kept(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    parallel.set_cpu_flags()
    import os

    assert os.environ["XLA_FLAGS"].split() == list(parallel.CPU_XLA_FLAGS)
    mine = "--xla_force_host_platform_device_count=4 --xla_cpu_experimental_ynn_fusion_type=all"
    monkeypatch.setenv("XLA_FLAGS", mine)
    parallel.set_cpu_flags()
    assert os.environ["XLA_FLAGS"] == mine
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    parallel.set_cpu_flags()
    assert os.environ["XLA_FLAGS"].split() == ["--xla_force_host_platform_device_count=4",
                                               *parallel.CPU_XLA_FLAGS]

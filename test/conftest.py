"""Shared pytest fixtures: an isolated ROS graph per test."""

from __future__ import annotations

import os

import pytest
from domain_coordinator import domain_id

from bevformer_ros.ros_process import isolation_env


@pytest.fixture
def ros_env(tmp_path, monkeypatch):
    """Give the test a private ROS graph; return the full environment for child processes.

    Its own ROS_DOMAIN_ID (reserved across concurrent test runs by domain_coordinator), discovery
    limited to this host, logs under tmp_path and the large-image Fast DDS profile. The variables
    are also set in this process, so a GraphProbe created in the test joins the same graph (Fast DDS
    reads its profile and rcl its log folder once per process: every test here sets the same ones).
    """
    with domain_id() as domain:
        for key, value in isolation_env(domain, tmp_path / 'ros_log').items():
            monkeypatch.setenv(key, value)
        yield dict(os.environ)

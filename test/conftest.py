# Copyright 2026 The bevformer_ros Authors
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""Shared pytest fixtures: an isolated ROS graph per test."""

from __future__ import annotations

import os

from bevformer_ros.ros.process import isolation_env, reserved_domain_id
import pytest
from venv_state import VENV_AT_START, venv_state

LAST = 'test_venv_intact.py'  # checks what every other test may have changed in the venv
# Fixtures that hand a test a private ROS graph: every test using one starts DDS participants.
DDS_FIXTURES = ('ros_env', 'module_ros_env')


def pytest_sessionstart(session):
    """Note the venv's distributions before any test can change them."""
    session.config.stash[VENV_AT_START] = venv_state()


def pytest_collection_modifyitems(config, items):
    """Mark the tests on a private ROS graph `dds`; run the venv check last (stable sort)."""
    for item in items:
        if any(name in getattr(item, 'fixturenames', ()) for name in DDS_FIXTURES):
            item.add_marker(pytest.mark.dds)
    items.sort(key=lambda item: item.path.name == LAST)


@pytest.fixture
def ros_env(tmp_path, monkeypatch):
    """
    Give the test a private ROS graph; return the full environment for child processes.

    Its own ROS_DOMAIN_ID (reserved across concurrent test runs by domain_coordinator), discovery
    limited to this host, logs under tmp_path and the large-image Fast DDS profile. The variables
    are also set in this process, so a GraphProbe created in the test joins the same graph (Fast
    DDS reads its profile and rcl its log folder once per process: every test here sets the same
    ones).
    """
    with reserved_domain_id() as domain:
        for key, value in isolation_env(domain, tmp_path / 'ros_log').items():
            monkeypatch.setenv(key, value)
        yield dict(os.environ)

"""Fixtures shared by the integration tests (tests/integration/) and the simulators' tests
(tests/sim/): a fresh Redis per test, a factory for the real campaign-sync processes (stopped,
and checked for sanitizer reports, afterwards), the CRM simulators, the World of both, and the
real CRM clients from npm. The harness itself is tests/cs/."""
import shutil

import pytest

import cs
from cs import clients


@pytest.fixture
def workdir(tmp_path):
    return str(tmp_path)


@pytest.fixture
def redis(workdir):
    r = cs.Redis(workdir).start()
    yield r
    r.stop()


@pytest.fixture
def services(workdir):
    """Factory: services(redis_url=..., command='ingest', **env) -> started cs.Service
    (cs.Services); every process is stopped and checked after the test."""
    started = cs.Services(workdir)
    yield started
    errors = started.stop_all()  # every process, not only the first that fails
    if errors:
        pytest.fail("\n\n".join(errors))


@pytest.fixture
def service(redis, services):
    return services(redis.url)


def pytest_report_header(config):
    return [f"campaign-sync binary: {cs.BIN}", f"sanitized: {cs.SANITIZED}",
            f"redis-server: {shutil.which('redis-server')}"]


@pytest.fixture
def sf_sim(workdir):
    s = cs.Sim("salesforce_sim.py", workdir).start()
    yield s
    s.stop()


@pytest.fixture
def mkto_sim(workdir):
    s = cs.Sim("marketo_sim.py", workdir).start()
    yield s
    s.stop()


@pytest.fixture
def world(redis, services, sf_sim, mkto_sim):
    """cs.World on this test's Redis and simulators; a module may override this fixture to
    set its start() defaults (world.defaults(...))."""
    return cs.World(redis, services, sf_sim, mkto_sim)


@pytest.fixture(scope="module")
def node_modules():
    """The real CRM clients' node_modules (cs.clients.install: installed once per lock file);
    a failed install fails the test, it never skips."""
    try:
        return clients.install()
    except clients.InstallError as e:
        pytest.fail(str(e))

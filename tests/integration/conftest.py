"""Fixtures shared by the integration tests: a fresh Redis per test and a factory for the
real campaign-sync processes, stopped (and checked for sanitizer reports) afterwards."""
import shutil

import pytest

import cs


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
    """Factory: services(redis_url=..., command='ingest', **env) -> started cs.Service.
    `ingest` by default, so that no worker consumes what a receive-path test inspects."""
    started = []

    def start(redis_url, command="ingest", wait=True, name="svc", **env):
        if command in ("serve", "worker"):
            env = {**cs.NOWHERE_CRMS, **env}
        s = cs.Service(workdir, cs.base_env(redis_url, workdir, **env), command, name)
        started.append(s)
        return s.start(wait=wait)

    yield start
    errors = []
    for s in started:
        try:
            s.stop()
        except AssertionError as e:  # report every process, not only the first
            errors.append(str(e))
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

"""The real CRM clients from npm that the simulators' tests run: jsforce (Salesforce) and
node-marketo-rest (Marketo), pinned in tests/sim/clients/package.json and package-lock.json
and installed once (`npm ci`) into build/npm-clients; later runs reuse that install while the
lock files are unchanged. Each test runs one node script of tests/sim/clients/ with one JSON
argument and reads its JSON report, step by step (ok, failed)."""
import fcntl
import hashlib
import json
import os
import shutil
import subprocess

from .procs import ROOT

CLIENTS = os.path.join(ROOT, "tests", "sim", "clients")
INSTALL = os.path.join(ROOT, "build", "npm-clients")
LOCK_FILES = ("package.json", "package-lock.json")


class InstallError(Exception):
    pass


def _lock_digest():
    h = hashlib.sha256()
    for name in LOCK_FILES:
        with open(os.path.join(CLIENTS, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def install():
    """build/npm-clients/node_modules, installed from the committed lock file when it is not
    there yet or the lock file changed; InstallError when that fails."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise InstallError("node and npm are needed to run the real CRM clients: "
                           "`scripts/deps.sh test` installs Debian's nodejs and npm")
    os.makedirs(INSTALL, exist_ok=True)
    stamp = os.path.join(INSTALL, ".installed")
    want = _lock_digest()
    with open(os.path.join(INSTALL, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once install once
        have = open(stamp).read() if os.path.exists(stamp) else ""
        if have != want or not os.path.isdir(os.path.join(INSTALL, "node_modules")):
            if os.path.exists(stamp):
                os.remove(stamp)
            for name in LOCK_FILES:
                shutil.copyfile(os.path.join(CLIENTS, name), os.path.join(INSTALL, name))
            try:
                p = subprocess.run(
                    [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error",
                     "--fetch-retries=2", "--fetch-timeout=60000"],
                    cwd=INSTALL, capture_output=True, text=True, timeout=600,
                    env=dict(os.environ, npm_config_update_notifier="false"))
                rc, err = p.returncode, p.stderr
            except subprocess.TimeoutExpired as e:
                rc, err = "timeout", str(e)
            if rc != 0:
                raise InstallError(
                    f"could not install the real CRM clients (npm ci in build/npm-clients from "
                    f"tests/sim/clients/package-lock.json, exit {rc}); this test needs the npm "
                    f"registry for its first run:\n{err[-3000:]}")
            with open(stamp, "w") as f:
                f.write(want)
    return os.path.join(INSTALL, "node_modules")


def run_client(node_modules, script, arg):
    """Runs tests/sim/clients/<script> with one JSON argument; returns its JSON report."""
    env = dict(os.environ, NODE_PATH=node_modules, NODE_MARKETO_LOG_LEVEL="fatal")
    p = subprocess.run(["node", os.path.join(CLIENTS, script), json.dumps(arg)], env=env,
                       capture_output=True, text=True, timeout=60)
    lines = p.stdout.strip().splitlines()
    assert p.returncode == 0 and lines, f"{script} failed ({p.returncode}):\n{p.stderr[-3000:]}"
    return json.loads(lines[-1])


def ok(report, step):
    got = report[step]
    assert got["ok"], f"{step}: the client raised {got['error']}"
    return got["value"]


def failed(report, step):
    got = report[step]
    assert not got["ok"], f"{step}: expected the client to raise, got {got['value']}"
    return got["error"]

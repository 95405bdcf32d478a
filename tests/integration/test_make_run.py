"""`make run` without CRM credentials, as the README promises a newcomer: scripts/run.sh starts
its own Redis, both simulators and `campaign-sync serve` (with generated secrets, and the
Salesforce endpoint URL's token, which it prints), creates the demo mapping and prints
curl commands; pasting those commands syncs a change each way. The commands are run exactly
as printed (through bash), and the result is read back with the printed commands too."""
import json
import os
import re
import signal
import subprocess
import threading

import cs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def printed_commands(text):
    """The curl commands of the demo text, continuation lines joined, in order."""
    cmds, cur = [], None
    for line in text.splitlines():
        s = line.strip()
        if cur is not None:
            cur += " " + s.rstrip("\\").strip()
            if not s.endswith("\\"):
                cmds.append(cur)
                cur = None
        elif s.startswith("curl "):
            if s.endswith("\\"):
                cur = s.rstrip("\\").strip()
            else:
                cmds.append(s)
    return cmds


def sh(cmd):
    return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30,
                          check=True).stdout


def test_make_run_demo_syncs_a_change_each_way(workdir):
    ports = {k: cs.free_port() for k in ("PORT", "SF_SIM_PORT", "MKTO_SIM_PORT", "redis")}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SF_", "MARKETO_", "REDIS_", "ADMIN_"))}
    env.update({"PORT": str(ports["PORT"]), "SF_SIM_PORT": str(ports["SF_SIM_PORT"]),
                "MKTO_SIM_PORT": str(ports["MKTO_SIM_PORT"]),
                "REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
                "RUN_DIR": os.path.join(workdir, "run"),
                "BUILD": os.path.dirname(cs.BIN)})
    proc = subprocess.Popen([os.path.join(ROOT, "scripts", "run.sh")], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    out = []
    reader = threading.Thread(target=lambda: out.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        try:
            cs.wait_until(lambda: any("The campaign's Type and ActualCost" in l for l in out), 60,
                          what="the demo's instructions")
        except AssertionError as e:
            raise AssertionError(f"{e}; run.sh printed:\n{''.join(out)[-3000:]}") from None
        text = "".join(out)
        assert "starting redis-server" in text, "no Redis answered: run.sh starts its own"
        # The demo authenticates Salesforce by a generated token in the endpoint URL, and its
        # secrets are long enough for the service to start (32 random bytes each).
        url = re.search(r"run: Salesforce Outbound Message endpoint URL: "
                        rf"http://127\.0\.0\.1:{ports['PORT']}/webhooks/salesforce/([0-9a-f]+)\n",
                        text)
        assert url and len(url.group(1)) == 64, text[-3000:]
        cmds = printed_commands(text)
        mk_change, sf_show, sf_change, mk_show = cmds[0], cmds[1], cmds[2], cmds[3]
        assert f"localhost:{ports['MKTO_SIM_PORT']}/_sim/members" in mk_change
        assert f"localhost:{ports['SF_SIM_PORT']}/_sim/members" in sf_change

        # 1. Marketo -> Salesforce
        sh(mk_change)
        members = cs.wait_until(
            lambda: [m for m in json.loads(sh(sf_show))["members"] if m["Status"] == "Registered"],
            30, what="the Marketo change in Salesforce")
        assert len(members) == 1 and members[0]["ContactId"], members

        # 2. Salesforce -> Marketo
        sh(sf_change)
        cs.wait_until(lambda: [m for m in json.loads(sh(mk_show))["members"]
                               if m["statusName"] == "Attended"],
                      30, what="the Salesforce change in Marketo")

        # 3. The service's own view, with the printed admin token.
        assert re.search(r'Authorization: Bearer [0-9a-f]{64}"', cmds[4]), cmds[4]
        mappings = json.loads(sh(cmds[4]))
        assert len(mappings["items"]) == 1 and mappings["items"][0]["enabled"] is True, mappings
        metrics = sh(cmds[5])
        applied = {m.group(1): float(m.group(2)) for m in re.finditer(
            r'campaign_sync_events_applied_total\{target="(\w+)"\} (\S+)', metrics)}
        assert applied["salesforce"] >= 1 and applied["marketo"] >= 1, metrics
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

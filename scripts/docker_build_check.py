#!/usr/bin/env python3
"""Replays docker/Dockerfile's build without a Docker engine (none runs on our machines).

Both stages are Debian bookworm, like the machines CI runs on, so the Dockerfile's own
commands can run here: the build stage's package installs, then its COPY instructions into
a clean directory and its build command there; the runtime stage's package installs; and
finally a check that every shared library the built binary needs comes from a runtime-stage
package (or one it depends on, or Debian's essential set that bookworm-slim ships), so the
slim image would start. Exits non-zero, saying why, on the first problem."""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse(path):
    """Dockerfile -> [stage], stage = {"from", "name", "ins": [(INSTR, args)]}."""
    lines, buf = [], ""
    for raw in open(path):
        line = raw.rstrip("\n")
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        lines.append((buf + line).strip())
        buf = ""
    stages = []
    for line in lines:
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            stages.append({"from": m.group(1), "name": m.group(2), "ins": []})
        else:
            stages[-1]["ins"].append((instr, args.strip()))
    return stages


def apt_packages(cmd):
    m = re.search(r"apt-get install ([^&|;]*)", cmd)
    return [w for w in shlex.split(m.group(1)) if not w.startswith("-")] if m else []


def run(cmd, cwd=None, env=None):
    print(f"+ {cmd}", flush=True)
    subprocess.run(cmd, shell=True, check=True, cwd=cwd, env=env, executable="/bin/bash")


def sudo():
    return "" if os.geteuid() == 0 else "sudo "


def install(packages):
    missing = [p for p in packages if subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True
    ).stdout != "install ok installed"]
    if missing:
        run(f"{sudo()}env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
            f"--no-install-recommends {' '.join(missing)}")


def closure(packages):
    """The packages plus everything they depend on (what apt would install in the image)."""
    out = subprocess.run(["apt-cache", "depends", "--recurse", "--no-recommends",
                          "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
                          "--no-enhances", *packages], capture_output=True, text=True,
                         check=True).stdout
    names = set(packages)
    for line in out.splitlines():
        line = line.strip()
        if line.startswith(("Depends:", "PreDepends:")):
            line = line.split(":", 1)[1].strip()
        names.add(line.strip("<>").split(":")[0])
    essential = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Essential} ${Priority}\n"],
                               capture_output=True, text=True).stdout
    for line in essential.splitlines():
        name, ess, prio = (line.split() + ["", ""])[:3]
        if ess == "yes" or prio == "required":
            names.add(name)
    return names


def main():
    stages = parse(os.path.join(ROOT, "docker", "Dockerfile"))
    build, runtime = stages[0], stages[-1]
    assert len(stages) >= 2, "the Dockerfile must have a build and a runtime stage"

    # 1. The build stage: packages, COPY into a clean directory, the build command.
    for instr, args in build["ins"]:
        if instr == "RUN" and "apt-get install" in args:
            install(apt_packages(args))
    work = tempfile.mkdtemp(prefix="docker-build-check-")
    workdir, env = work, dict(os.environ)
    try:
        for instr, args in build["ins"]:
            if instr == "WORKDIR":
                workdir = os.path.join(work, args.lstrip("/"))
                os.makedirs(workdir, exist_ok=True)
            elif instr == "ARG":
                name, _, default = args.partition("=")
                env.setdefault(name, default)
            elif instr == "COPY":
                *srcs, dst = shlex.split(args)
                target = os.path.join(workdir, dst)
                for src in srcs:
                    s = os.path.join(ROOT, src)
                    if os.path.isdir(s):  # as in Docker: a directory's contents go to dst
                        shutil.copytree(s, target, dirs_exist_ok=True)
                    else:
                        os.makedirs(target if dst.endswith("/") else os.path.dirname(target),
                                    exist_ok=True)
                        shutil.copy2(s, target)
            elif instr == "RUN" and "apt-get" not in args:
                run(args, cwd=workdir, env=env)
        binary = os.path.join(workdir, "build", "campaign-sync")
        assert os.path.exists(binary), "the build stage did not produce build/campaign-sync"

        # 2. The runtime stage's packages, and the binary's libraries among them.
        runtime_pkgs = []
        for instr, args in runtime["ins"]:
            if instr == "RUN" and "apt-get install" in args:
                runtime_pkgs += apt_packages(args)
        install(runtime_pkgs)
        provided = closure(runtime_pkgs)
        ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
        problems = []
        for line in ldd.splitlines():
            m = re.search(r"=> (/\S+)", line)
            if not m:
                continue
            lib = os.path.realpath(m.group(1))
            owner = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True)
            if owner.returncode != 0:
                owner = subprocess.run(["dpkg", "-S", m.group(1)], capture_output=True, text=True)
            pkg = owner.stdout.split(":")[0].strip() if owner.returncode == 0 else "?"
            if pkg not in provided:
                problems.append(f"{m.group(1)} comes from {pkg}, which the runtime stage does "
                                f"not install")
        if problems:
            sys.exit("docker-build-check: " + "; ".join(problems))
        run(f"{binary} --version")
        print(f"docker-build-check: ok: built in a clean directory; {len(runtime_pkgs)} runtime "
              f"packages provide every library the binary needs")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""The documents tell the truth about the binary: every setting and command that README.md,
SECURITY.md and docs/*.md name exists in it, every relative link points at a file (and heading)
that exists, the README's tables list every command and setting there is, and the licence file
matches the image's licence label.

Settings are read from the binary itself: the "effective configuration" line that a starting
service logs names every setting it knows. Commands come from `campaign-sync --help`."""
import glob
import os
import re
import signal
import subprocess

import pytest

import cs

DOCS = [os.path.join(cs.ROOT, "README.md"), os.path.join(cs.ROOT, "SECURITY.md")] + sorted(
    glob.glob(os.path.join(cs.ROOT, "docs", "*.md")))
GUIDE = os.path.join(cs.ROOT, "docs", "setup.md")

# Settings the documents name before the change adding them has landed, with its issue. Each
# one must be listed in the guide's "Settings that are being added" table, so a reader knows;
# once a name is in the binary, this test fails until it is taken off both lists. Keep it short.
PENDING = {}

# Upper-case names in the documents that are not settings, each checked where it lives.
PLACEHOLDERS = {"NAME_FILE", "PROGRAM_ID"}  # README: secrets as NAME_FILE; --help: PROGRAM_ID
SIM_FILES = glob.glob(os.path.join(cs.ROOT, "tests", "sim", "*.py"))
SERVICE_FILES = glob.glob(os.path.join(cs.ROOT, "service", "*.c"))
HARNESS_FILES = glob.glob(os.path.join(cs.ROOT, "tests", "cs", "*.py"))

NAME_RE = re.compile(r"(?<![A-Za-z0-9_])[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+(?![A-Za-z0-9_])")
DOLLAR_RE = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)(?![A-Za-z0-9_])")
LINK_RE = re.compile(r"\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def split_code(text):
    """(prose with fenced blocks removed, [fenced block bodies])."""
    fences = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    return prose, fences


def code_pieces(text):
    """Inline code spans and fenced blocks: where the documents name settings and commands."""
    prose, fences = split_code(text)
    return re.findall(r"`([^`\n]+)`", prose) + fences


def doc_names(path):
    """Upper-case names with an underscore (and $NAME of any shape) in the code of a document."""
    names = set()
    for piece in code_pieces(read(path)):
        names.update(NAME_RE.findall(piece))
        names.update(DOLLAR_RE.findall(piece))
    return names


def rel(path):
    return os.path.relpath(path, cs.ROOT)


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    """The settings the binary knows (name -> logged value) and its --help text."""
    workdir = str(tmp_path_factory.mktemp("docs"))
    redis = cs.Redis(workdir).start()
    try:
        # Every secret set (some `ingest` does not need), to see which settings are secrets, and
        # with them the Salesforce webhook's authentication.
        env = cs.base_env(redis.url, workdir, SF_CLIENT_SECRET="x" * 40,
                          MARKETO_CLIENT_SECRET="y" * 40, SF_ALLOWED_CIDRS="127.0.0.0/8",
                          SF_WEBHOOK_TOKEN="t" * 40)
        svc = cs.Service(workdir, env, "ingest")
        try:
            svc.start()
        finally:
            svc.stop(signal.SIGTERM)  # also when it never became healthy
        lines = [l for l in svc.logs() if l.get("msg") == "effective configuration"]
        assert lines, "no effective configuration in the log:\n" + svc.stderr()[-3000:]
        config = {k: v for k, v in lines[0].items() if k not in ("ts", "level", "msg")}
    finally:
        redis.stop()
    out = subprocess.run([cs.BIN, "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    return {"config": config, "help": out.stdout}


def help_commands(help_text):
    """The command signatures of --help: 'serve', 'check --roundtrip PROGRAM_ID [...]', ..."""
    block = help_text.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    sigs = []
    for line in block.splitlines():
        m = re.match(r"^  (\S+)(.*)$", line)
        if not m:
            continue
        word, rest = m.groups()
        # Options and their arguments belong to the command; anything else is its description.
        options = re.split(r"\s{2,}", rest)[0].rstrip() if rest.startswith(" --") else ""
        sigs.append(word + options)
    return sigs


def test_license_and_image_label():
    text = read(os.path.join(cs.ROOT, "LICENSE"))
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text, "the whole licence text, not a stub"
    docker = read(os.path.join(cs.ROOT, "docker", "Dockerfile"))
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in docker


def slug(heading):
    """The anchor GitHub gives a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(path):
    prose, _ = split_code(read(path))
    seen, out = {}, set()
    for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", prose, re.M):
        s = slug(m.group(1))
        out.add(s if s not in seen else f"{s}-{seen[s]}")
        seen[s] = seen.get(s, 0) + 1
    return out


def test_relative_links_point_at_existing_files_and_headings():
    bad, checked = [], 0
    for doc in DOCS:
        prose, _ = split_code(read(doc))
        for text, target in LINK_RE.findall(prose):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            checked += 1
            path, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
            if not os.path.exists(dest):
                bad.append(f"{rel(doc)}: [{text}]({target}) -> no file {rel(dest)}")
            elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
                bad.append(f"{rel(doc)}: [{text}]({target}) -> no heading #{anchor} in {rel(dest)}")
    assert checked > 10, "the link pattern found (almost) no links"
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_every_command_named_exists(binary):
    sigs = help_commands(binary["help"])
    words = {s.split()[0] for s in sigs}
    assert {"serve", "ingest", "worker", "check", "healthcheck", "--version", "--help"} <= words
    bad = []
    for doc in DOCS:
        for piece in code_pieces(read(doc)):
            for line in piece.splitlines():
                for m in re.finditer(r"(?:^|[\s;|&(])campaign-sync\s+(\S+)([^#]*)", line):
                    cmd, rest = m.group(1), m.group(2)
                    if cmd not in words:
                        bad.append(f"{rel(doc)}: `campaign-sync {cmd}` is no command")
                    for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*", rest):
                        if flag not in binary["help"]:
                            bad.append(f"{rel(doc)}: `campaign-sync {cmd} ... {flag}`: no such option")
    assert not bad, "\n".join(bad)


def section(text, heading):
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end >= 0 else len(text)]


def test_readme_commands_table_lists_every_command(binary):
    table = section(read(os.path.join(cs.ROOT, "README.md")), "## Commands\n")
    rows = re.findall(r"^\|\s*`campaign-sync ([^`]+)`\s*\|", table, re.M)
    assert sorted(rows) == sorted(help_commands(binary["help"])), (
        "README's Commands table and `campaign-sync --help` differ")


def allowed_other_name(name):
    """Why an upper-case name that is no setting may stand in the documents, or None."""
    if name in PLACEHOLDERS:
        return "placeholder"
    makefile = read(os.path.join(cs.ROOT, "Makefile"))
    if re.search(rf"^{name}\s*[?:]?=|\$\({name}\)", makefile, re.M):
        return "make variable"
    if any(re.search(rf"os\.environ(?:\.get\(|\[)\"{name}\"", read(f)) for f in HARNESS_FILES):
        return "test variable"
    # A CRM's error code: the simulators model it or the service handles it, and no setting.
    if name not in read(os.path.join(cs.ROOT, "service", "config.c")) and any(
            name in read(f) for f in SIM_FILES + SERVICE_FILES):
        return "CRM error code"
    return None


def test_every_setting_named_exists(binary):
    config = binary["config"]
    secrets = {k for k, v in config.items() if v == "[redacted]"}
    assert {"SF_CLIENT_SECRET", "MARKETO_CLIENT_SECRET", "ADMIN_TOKEN"} <= secrets
    bad = []
    for doc in DOCS:
        for name in sorted(doc_names(doc)):
            if name in config or name in PENDING:
                continue
            if name.endswith("_FILE") and name[:-5] in secrets:
                continue
            if name.endswith("_FILE") and name[:-5] in config:
                bad.append(f"{rel(doc)}: {name}: {name[:-5]} is no secret, it has no _FILE form")
            elif name == "PROGRAM_ID" and name not in binary["help"]:
                bad.append(f"{rel(doc)}: PROGRAM_ID is no longer a --help placeholder")
            elif not allowed_other_name(name):
                bad.append(f"{rel(doc)}: {name} is no setting of this build (nor a make variable, "
                           f"placeholder or CRM error code); if another change adds it, list it "
                           f"in PENDING with its issue and in the guide's table")
    assert not bad, "\n".join(bad)


def test_readme_configuration_table_lists_every_setting(binary):
    table = section(read(os.path.join(cs.ROOT, "README.md")), "## Configuration\n")
    listed = set()
    for first_cell in re.findall(r"^\|\s*([^|]+)\|", table, re.M):
        listed.update(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    missing = sorted(set(binary["config"]) - listed)
    assert not missing, f"settings missing from README's configuration table: {missing}"


def test_pending_settings_are_marked_in_the_guide(binary):
    table = section(read(GUIDE), "## Settings that are being added\n")
    rows = {name: int(issue) for name, issue in
            re.findall(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|.*\|\s*(\d+)\s*\|\s*$", table, re.M)}
    assert rows == PENDING, "the guide's table of settings being added differs from PENDING"
    landed = [f"{n} (issue {i})" for n, i in PENDING.items() if n in binary["config"]]
    assert not landed, ("now in the binary, so no longer pending: take these off PENDING and off "
                        "the guide's table: " + ", ".join(landed))
    named = set().union(*(doc_names(d) for d in DOCS))
    unused = sorted(set(PENDING) - named)
    assert not unused, f"PENDING names that no document uses any more: {unused}"

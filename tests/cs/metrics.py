"""Prometheus text as the service's /metrics writes it: one series' value, samples summed by
labels, and promtool's opinion of the whole exposition."""
import re
import shutil
import subprocess

_LINE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"')


def metric_value(text, name, **labels):
    """The value of the one series whose labels are exactly `labels`, or None."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (.+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if got == {k: str(v) for k, v in labels.items()}:
            return float(m.group(4))
    return None


def parse_metrics(text):
    """[(name, {labels}, value)] of a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        try:
            v = float(m.group(4))
        except ValueError:
            continue
        out.append((m.group(1), dict(_LABEL.findall(m.group(3) or "")), v))
    return out


def metric_sum(samples, name, **labels):
    """The sum over the samples (parse_metrics) of `name` whose labels include `labels`."""
    return sum(v for n, l, v in samples
               if n == name and all(l.get(k) == str(x) for k, x in labels.items()))


def promtool_check(text):
    """Returns promtool's complaints ('' when the exposition is clean)."""
    tool = shutil.which("promtool")
    assert tool, "promtool is missing (Debian package prometheus)"
    p = subprocess.run([tool, "check", "metrics"], input=text.encode(), capture_output=True)
    return (p.stdout + p.stderr).decode().strip() if p.returncode else ""

#!/usr/bin/env python3
"""For every panel of the dashboard fixture, the metric names and labels its PromQL uses that a
Prometheus scrape (read on stdin, parsed with prometheus_client) does not hold.

    check.py FIXTURE < scrape.txt   ->   JSON {"panel": ["missing name or name{label}", ...]}

A metric name counts as present when a sample has that name (histogram samples are `_bucket`,
`_sum`, `_count`); a label when a sample of that metric carries it. Labels Prometheus adds at
scrape time (`app`, `instance`, `job`) are not the exporter's and are skipped.
"""
import json
import re
import sys

from prometheus_client.parser import text_string_to_metric_families

FUNCTIONS = {
    "sum", "rate", "delta", "increase", "histogram_quantile", "max_over_time", "min_over_time",
    "avg_over_time", "count", "topk", "bottomk", "by", "without", "on", "ignoring", "avg",
    "max", "min", "label_values", "le",
}
TARGET_LABELS = {"app", "instance", "job"}


def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def uses(expr):
    """(metric names, labels) an expression reads."""
    text = strip_strings(expr)
    labels = set()
    for body in re.findall(r"\{([^}]*)\}", text):
        labels.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", body))
    for group in re.findall(r"\bby\s*\(([^)]*)\)", text):
        labels.update(x.strip() for x in group.split(",") if x.strip())
    m = re.match(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*([A-Za-z_]\w*)\s*\)", text)
    if m:
        return {m.group(1)}, {m.group(2)}
    # Drop label matchers, grouping clauses and range selectors before looking for names.
    bare = re.sub(r"\{[^}]*\}", " ", text)
    bare = re.sub(r"\bby\s*\([^)]*\)", " ", bare)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    names = {
        t for t in re.findall(r"(?<![$\w])([A-Za-z_:][A-Za-z0-9_:]*)", bare)
        if t not in FUNCTIONS
    }
    return names, labels - TARGET_LABELS


def main():
    present = {}
    for fam in text_string_to_metric_families(sys.stdin.read()):
        for s in fam.samples:
            present.setdefault(s.name, set()).update(s.labels)
    report = {}
    for line in open(sys.argv[1], encoding="utf-8"):
        if not line.strip() or line.startswith("#"):
            continue
        panel, expr = line.rstrip("\n").split("\t", 1)
        names, labels = uses(expr)
        missing = report.setdefault(panel, [])
        for n in sorted(names):
            if n not in present:
                missing.append(n)
                continue
            for label in sorted(labels - present[n] - {"le"}):
                missing.append(f"{n}{{{label}}}")
            if "le" in labels and n.endswith("_bucket") and "le" not in present[n]:
                missing.append(f"{n}{{le}}")
    report = {panel: sorted(set(missing)) for panel, missing in report.items()}
    print(json.dumps(report, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()

"""What the operator asks of the API server, counted by the API server itself.

``apiserver_request_total`` has no client label, so requests are told apart by what only the
operator reads and writes while a simulated node (KWOK or the virtual node) plays the kubelet:
Workflows and their status, pods (the scheduler binds through ``pods/binding``, the node patches
``pods/status``), reads of events, and events posted with reasons not the scheduler's. Used by
``benchmarks/orchestration.py`` and the load test, which asserts the benchmark's figure so that a
regression fails a test, not only a table.
"""

from __future__ import annotations

import collections
import re

from tests.cluster.fixtures import Cluster

REQUEST = re.compile(r'^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<count>[0-9.e+]+)$')
OPERATOR = {("workflows", ""), ("workflows", "status"), ("pods", "")}
"""(resource, subresource) pairs only the operator reads and writes when pods run on a simulated node."""
SCHEDULER_EVENTS = {"Scheduled", "FailedScheduling"}
Key = tuple[str, str, str]
"""(resource, subresource, verb)"""


def request_counts(cluster: Cluster) -> collections.Counter[Key]:
    """``apiserver_request_total`` so far, summed by (resource, subresource, verb)."""
    counts: collections.Counter[Key] = collections.Counter()
    for line in cluster.kubectl("get", "--raw=/metrics").stdout.splitlines():
        if match := REQUEST.match(line):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
            counts[(labels.get("resource", ""), labels.get("subresource", ""), labels["verb"])] += float(match["count"])
    return counts


def made_since(before: collections.Counter[Key], after: collections.Counter[Key],
               own: dict[Key, float]) -> dict[Key, float]:
    """Requests between the two counts, less ``own``: those the caller made itself (its creates and
    lists of Workflows, say)."""
    delta = {key: after[key] - before.get(key, 0) - own.get(key, 0) for key in after}
    return {key: count for key, count in delta.items() if count > 0}


def operator_events(reasons: collections.Counter[str]) -> int:
    """Events the operator posted, of the namespace's events counted by reason."""
    return sum(count for reason, count in reasons.items() if reason not in SCHEDULER_EVENTS)


def by_operator(delta: dict[Key, float], reasons: collections.Counter[str]) -> float:
    """The operator's requests among ``delta``, its events included (watches are left out: each is
    one request held open, renewed now and then)."""
    return sum(count for key, count in delta.items() if whose(key) == "operator") + operator_events(reasons)


def whose(key: Key) -> str:
    """Who makes requests of this kind here: the operator, the scheduler, the node, events posted by
    either the operator or the scheduler (told apart by reason), or others."""
    resource, sub, verb = key
    if verb == "WATCH":
        return "watch"
    if (resource, sub) in OPERATOR or (resource == "events" and verb != "POST"):  # only the operator reads events
        return "operator"
    if resource == "events":
        return "events"
    return {("pods", "binding"): "scheduler", ("pods", "status"): "node"}.get((resource, sub), "other")

"""``ferry-operator``: run the operator against the current kubeconfig or in-cluster credentials."""

from __future__ import annotations

import argparse
import logging

import kopf

from ferry_operator import handlers, kube, leadership, metrics  # noqa: F401  (importing handlers registers them)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="ferry-operator", description=__doc__)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[],
                       help="watch this namespace (repeatable); default: the whole cluster")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch the whole cluster")
    parser.add_argument("--liveness", default="http://0.0.0.0:8080/healthz",
                        help="liveness endpoint (default: %(default)s)")
    parser.add_argument("--metrics-port", type=int, default=9090,
                        help="serve Prometheus metrics on this port; 0 turns them off (default: %(default)s)")
    parser.add_argument("--leader-elect", action="store_true",
                        help="run several replicas: only the holder of a Lease acts (see leadership.py)")
    parser.add_argument("--leader-election-namespace", help="namespace of the Lease (default: the pod's)")
    parser.add_argument("--leader-election-id", default="ferry-operator", help="name of the Lease")
    parser.add_argument("--log-format", choices=["plain", "json"], default="json")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat[args.log_format.upper()])
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    if args.leader_elect:
        kube.login()
        leadership.wait_until_leader(args.leader_election_namespace or leadership.own_namespace(),
                                     args.leader_election_id, args.liveness)
    exact = bool(args.namespace) and not any(set("*?[!") & set(ns) for ns in args.namespace)
    kopf.run(standalone=True, clusterwide=not args.namespace, namespaces=args.namespace,
             liveness_endpoint=args.liveness or None, memo=kopf.Memo(exact_namespaces=exact))


if __name__ == "__main__":
    main()

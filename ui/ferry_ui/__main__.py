"""``ferry ui`` (also ``python -m ferry_ui``): serve the UI on localhost."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8686, help="port to listen on (default: 8686)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1; the UI has no login of its own)")
    parser.add_argument("--allow-host", action="append", dest="allow_hosts", default=[], metavar="NAME",
                        help="also answer requests for this host name (a name it is reached by besides "
                             "localhost, 127.0.0.1 and [::1]); repeat for more")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("-n", "--namespace", action="append", dest="namespaces", metavar="NAMESPACE",
                        help="only this namespace of the cluster; repeat for more (default: all you may list)")
    parser.add_argument("--store", action="append", dest="stores", default=[], metavar="URI",
                        help="another store to read outputs from, besides FERRY_RAW_DATA_PREFIX's (the local "
                             "store by default): the cluster operator's raw data prefix, e.g. s3://bucket/ferry; "
                             "repeat for more. Nothing outside the stores is read, whatever a workflow names")
    parser.add_argument("--local-only", action="store_true", help="show local runs only, no cluster")
    parser.add_argument("--cluster-only", action="store_true", help="show the cluster only, no local runs")


def run(args: argparse.Namespace) -> int:
    try:
        from ferry_ui import app, localruns
    except ImportError as error:
        import ferry

        print(f"ferry ui: {error.name} is not installed; install the UI with: {ferry.install_hint('ui')}", file=sys.stderr)
        return 1

    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        listening = app.bind(args.host, args.port)
    except OSError as error:
        print(f"ferry ui: cannot listen on {args.host} port {args.port} ({error.strerror or error}); "
              "choose another with --port", file=sys.stderr)
        return 2
    local = None if args.cluster_only else localruns.LocalSource()
    cluster = None
    if not args.local_only:
        try:
            from ferry_ui import cluster as cluster_

            cluster = cluster_.ClusterSource(args.context, args.namespaces).start()
        except Exception as error:  # noqa: BLE001 - no kubeconfig, no cluster: local runs still show
            if args.cluster_only:
                print(f"ferry ui: no cluster to show: {error}", file=sys.stderr)
                return 1
            print(f"ferry ui: showing local runs only (no cluster: {error})", file=sys.stderr)
    shown = f"[{args.host}]" if ":" in args.host and not args.host.startswith("[") else args.host
    print(f"Ferry UI on http://{shown}:{listening.getsockname()[1]}/ (Ctrl-C to stop)", file=sys.stderr, flush=True)
    app.serve(app.Sources(local, cluster), listening, allow_hosts=args.allow_hosts,
              stores=tuple(store_prefix(uri) for uri in args.stores))
    return 0


def store_prefix(uri: str) -> str:
    """A ``--store``, read as ``FERRY_RAW_DATA_PREFIX`` is: a path is a ``file://`` URI, no trailing ``/``."""
    from ferry.core import uris

    return uris.to_uri(uri).rstrip("/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ferry ui", description="Serve Ferry's web UI: local runs, and the "
                                     "workflows of the current kubeconfig context with your own credentials.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

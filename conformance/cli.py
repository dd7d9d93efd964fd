"""`deg-conformance`: the command-line front end. Parses arguments, calls the engine, prints, exits.

Exit codes: 0 no errors, 1 errors found, 2 unusable input or arguments, 3 target unreachable (run).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import orjson

from conformance import reporting, transcript
from conformance.engine import Engine, Progress
from conformance.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ConfigError
from conformance.layer2 import Layer2
from conformance.messages import parse_duration
from conformance.rules import Settings
from conformance.schemas import SchemaSet

REPORTS = Path("reports")


def _schema_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", type=Path, metavar="FILE",
                        help="a Beckn OpenAPI document to validate against instead of the built-in core 1.1.0 schemas")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--layer2", type=Path, metavar="FILE",
                       help="a Layer-2 file applied to every message (overlay or full OpenAPI document)")
    group.add_argument("--layer2-dir", type=Path, metavar="DIR",
                       help="a folder of Layer-2 files named {domain}_{version}.yaml (':' and '/' as '_')")
    group.add_argument("--no-layer2", action="store_true", help="skip Layer-2 checks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deg-conformance",
        description="Conformance checks for Beckn 1.1.0 apps on DEG networks.")
    sub = parser.add_subparsers(dest="command", required=True)

    rules = sub.add_parser("rules", help="list every rule the checks apply")
    rules.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    _schema_options(rules)

    validate = sub.add_parser("validate", help="check captured traffic offline",
                              description="Check captured Beckn messages: folders of JSON files, JSON Lines "
                                          "(plain or wrapped as {received_at, direction, body}), or HAR files.")
    validate.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    validate.add_argument("--json", action="store_true", help="print findings as JSON")
    validate.add_argument("--default-ttl", default="PT30S", metavar="DURATION",
                          help="ttl assumed for a request without one, for the callback-timing rule (default PT30S)")
    _schema_options(validate)

    sandbox = sub.add_parser("sandbox", help="run the reference DEG network on loopback until Ctrl-C",
                             description="Start the reference network (registry, gateway, BPPs, BAP) in the "
                                         "foreground and print each participant's id, URL and public key.")
    sandbox.add_argument("--config", type=Path, metavar="FILE", help="a YAML file of the settings below")
    sandbox.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    sandbox.add_argument("--port", type=int, help="port to listen on (default: a free one)")
    sandbox.add_argument("--catalog", type=Path, action="append", metavar="FILE",
                         help="a BPP's catalog ({catalog_descriptor, provider or providers}); repeat for several BPPs")
    sandbox.add_argument("--fault", action="append", default=[], metavar="PARTICIPANT=FAULT",
                         help="make a participant misbehave (see --list-faults); repeatable")
    sandbox.add_argument("--vary", action="append", default=[], metavar="PARTICIPANT=VARIATION",
                         help="make a participant differ from the reference while conforming (see --list-variations); "
                              "repeatable")
    sandbox.add_argument("--latency", type=float, help="seconds each BPP waits before a callback")
    sandbox.add_argument("--skew", type=int, help="seconds of clock skew allowed on signatures (default 5)")
    sandbox.add_argument("--list-faults", action="store_true", help="print the fault switches and exit")
    sandbox.add_argument("--list-variations", action="store_true", help="print the conformant variations and exit")

    run = sub.add_parser("run", help="play scenarios live against a target (default: the reference network)",
                         description="Play YAML scenarios and check every message both ways. As BAP (--role bap) "
                                     "against a BPP or gateway: with no --target or --gateway, the reference network "
                                     "is started and played against. As BPP (--role bpp) against a BAP: the harness "
                                     "serves BPPs of its own, registered in a reference registry and gateway it "
                                     "starts, and asks the BAP (by default the reference BAP) for each request.")
    run.add_argument("scenarios", nargs="*", type=Path, metavar="SCENARIO",
                     help="scenario files or folders (default: the shipped scenarios/ of the role)")
    run.add_argument("--probes", action="store_true", help="after the scenarios, send the probes (see `probe`)")
    _live_options(run)

    probe = sub.add_parser("probe", help="send deliberately wrong messages: does the target refuse them?",
                           description="Send the probe suite: one deliberately wrong, otherwise valid, signed "
                                       "message per probe, each in a fresh transaction. As BAP (default) to a BPP "
                                       "(--target; default the reference network's first BPP) or a gateway "
                                       "(--gateway alone); as BPP (--role bpp) as on_search callbacks to the BAP. A "
                                       "conformant target refuses each synchronously (a NACK, with the BECKN-005 "
                                       "code for a BPP; HTTP 401 with WWW-Authenticate for signatures) and sends no "
                                       "callback. Same flags, reports and exit codes as run.")
    _live_options(probe)
    return parser


def _live_options(parser: argparse.ArgumentParser) -> None:
    """The options `run` and `probe` share: who the target is, who the harness is, how long to wait, reports."""
    parser.add_argument("--role", choices=["bap", "bpp"], default="bap",
                        help="the part the harness plays (default bap)")
    parser.add_argument("--target", metavar="URL",
                        help="as BAP: the BPP under test, where every request goes; as BPP: the BAP's client "
                             "endpoint, asked to send each request")
    parser.add_argument("--drive", choices=["trigger", "passive"], default="trigger",
                        help="as BPP: POST each request to the BAP's client endpoint (trigger), or print what to do "
                             "in the app and wait (passive)")
    parser.add_argument("--catalog", action="append", default=[], type=Path, metavar="FILE",
                        help="as BPP: a catalog for one of the harness's BPPs (repeat; default the guide's two)")
    parser.add_argument("--gateway", metavar="URL", help="a gateway: searches go there, later requests to the "
                                                         "chosen BPP's bpp_uri")
    parser.add_argument("--registry", metavar="URL", help="the registry to look signing keys up in")
    parser.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                        help="where the harness listens: for callbacks as BAP, as its BPPs as BPP "
                             "(default 127.0.0.1, a free port)")
    parser.add_argument("--callback-url", metavar="URL",
                        help="the public URL the target reaches the harness at (bap_uri, or the BPPs' base), when it "
                             "differs from --listen")
    parser.add_argument("--subscriber-id", default="deg-conformance.local",
                        help="the harness's subscriber id (as BPP, each BPP is <catalog name>.<this>)")
    parser.add_argument("--key-id", default="deg-conformance-key-1", help="the unique key id of the harness's key")
    parser.add_argument("--key-file", type=Path, metavar="FILE",
                        help="the harness's base64 Ed25519 private key (default: a fresh key)")
    parser.add_argument("--signatures", choices=["required", "optional", "off"], default="required",
                        help="callbacks must be signed (required), are verified when signed (optional), or neither")
    parser.add_argument("--ack-timeout", type=float, default=5.0, metavar="SECONDS",
                        help="wait this long for a synchronous ACK/NACK (default 5)")
    parser.add_argument("--callback-timeout", type=float, metavar="SECONDS",
                        help="wait at most this long for any callback, whatever the ttl says")
    parser.add_argument("--fault", action="append", default=[], metavar="PARTICIPANT=FAULT",
                        help="with the reference network: make a participant misbehave (see sandbox --list-faults)")
    parser.add_argument("--report-dir", type=Path, metavar="DIR",
                        help="where reports go (default reports/<run-id>/)")
    parser.add_argument("--json", action="store_true", help="print summary.json to stdout")
    parser.add_argument("-n", dest="concurrency", type=int, default=1, metavar="N",
                        help="scenarios played at once (default 1)")
    _schema_options(parser)


def _engine(args: argparse.Namespace) -> Engine:
    schemas = SchemaSet.from_document(args.spec) if args.spec else SchemaSet.builtin()
    layer2 = Layer2(schemas, file=args.layer2, directory=args.layer2_dir, builtin=not args.no_layer2)
    ttl = parse_duration(getattr(args, "default_ttl", "PT30S"))
    if ttl is None:
        raise ConfigError(f"--default-ttl {args.default_ttl!r} is not an ISO 8601 duration (e.g. PT30S)")
    return Engine(schemas=schemas, layer2=layer2, settings=Settings(default_ttl=ttl))


def _progress(total: int) -> Progress | None:
    if total < 5000 or not sys.stderr.isatty():
        return None
    started = time.monotonic()

    def show(done: int) -> None:
        rate = done / max(time.monotonic() - started, 1e-9)
        print(f"\rchecked {done}/{total} messages ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)

    return show


def _per_participant(items: list[str], flag: str, what: str, example: str) -> dict[str, frozenset[str]]:
    """The values of a repeatable PARTICIPANT=`what` option (`--fault`, `--vary`), by participant."""
    chosen: dict[str, set[str]] = {}
    for item in items:
        participant, sep, name = item.partition("=")
        if not sep or not participant or not name:
            raise ConfigError(f"{flag} {item!r}: write PARTICIPANT={what}, e.g. sf-grid-loadflex={example}")
        chosen.setdefault(participant, set()).add(name)
    return {p: frozenset(n) for p, n in chosen.items()}


def _merged(configured: Mapping[str, frozenset[str]], given: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    """The configuration file's faults (or variations) and the command line's, participant by participant."""
    return {p: configured.get(p, frozenset()) | given.get(p, frozenset()) for p in {*configured, *given}}


def _run(args: argparse.Namespace, engine: Engine) -> int:
    # Imported here: the runner pulls in the network stack, which validate and rules do not need.
    from conformance import scenario
    from conformance.network import NetworkConfig
    from conformance.reporting.live import run_text, step_line, write_reports
    from conformance.reporting.run_summary import summary
    from conformance.runner import Harness, RunConfig, load_key_file, new_run_id

    probing = args.command == "probe"
    scenarios = [] if probing else [scenario.load(p) for p in scenario.discover(args.scenarios or [scenario.SCENARIOS])]
    if not probing and not args.scenarios:  # the shipped suite holds both roles' scenarios: play this role's
        scenarios = [s for s in scenarios if s.role == args.role]
        if not scenarios:
            raise ConfigError(f"no shipped scenario plays {args.role} (in {scenario.SCENARIOS})")
    if args.fault and (args.target or args.gateway):
        raise ConfigError("--fault applies to the reference network, which --target/--gateway replace")
    if args.role == "bpp" and args.gateway:
        raise ConfigError("--gateway is for --role bap; as BPP the harness starts its own gateway")
    if args.role == "bap" and (args.catalog or args.drive != "trigger"):
        raise ConfigError("--catalog and --drive are for --role bpp")
    faults = _per_participant(args.fault, "--fault", "FAULT", "no-callback")
    config = RunConfig(
        role=args.role, drive=args.drive, catalogs=tuple(args.catalog),
        target=args.target, gateway=args.gateway, registry=args.registry, listen=args.listen,
        callback_url=args.callback_url, subscriber_id=args.subscriber_id, key_id=args.key_id,
        private_key=load_key_file(args.key_file) if args.key_file else None, signatures=args.signatures,
        ack_timeout=args.ack_timeout, callback_timeout=args.callback_timeout, concurrency=args.concurrency,
        network=NetworkConfig(faults=faults) if faults else None)
    run_id = new_run_id()
    report_dir = args.report_dir or REPORTS / run_id
    try:  # before the run, not after it: a run whose reports cannot be written is lost
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--report-dir {report_dir}: cannot write reports there: {exc.strerror or exc}") from None

    lock = threading.Lock()

    def progress(scenario_result: Any, step: Any) -> None:
        with lock:  # scenarios run on several threads: one whole line at a time
            sys.stderr.write(step_line(scenario_result, step) + "\n")
            sys.stderr.flush()

    def notify(text: str) -> None:
        with lock:
            sys.stderr.write(f">>> {text}\n")
            sys.stderr.flush()

    with Harness(config, engine=engine, progress=progress, notify=notify) as harness:
        if args.role == "bpp":
            where = args.target or "the reference BAP"
            print(f"run {run_id}: {len(scenarios)} scenario(s) against {where} as BPP; the harness's BPPs: "
                  f"{', '.join(f'{b.key.subscriber_id} at {b.url}' for b in harness.bpps.values())}; "
                  f"gateway {harness.gateway}, registry {harness.registry}", file=sys.stderr, flush=True)
        else:
            where = "the reference network" if harness.network else (args.target or args.gateway)
            what = "the probes" if probing else f"{len(scenarios)} scenario(s){' and the probes' * args.probes}"
            print(f"run {run_id}: {what} against {where}, callbacks at {harness.callback_url}",
                  file=sys.stderr, flush=True)
        result = harness.run(scenarios, run_id, probes=probing or args.probes)
    write_reports(result, report_dir, participant=where or "?")
    if args.json:
        print(orjson.dumps(summary(result), option=orjson.OPT_INDENT_2, default=str).decode())
    else:
        print(run_text(result))
    print(f"reports in {report_dir}/", file=sys.stderr)
    return result.exit_code


def _sandbox(args: argparse.Namespace) -> int:
    # Imported here: the network pulls in uvicorn and Starlette, which validate and rules do not need.
    from conformance.network import FAULTS, VARIATIONS, Network, NetworkConfig

    listed = FAULTS if args.list_faults else VARIATIONS if args.list_variations else None
    if listed is not None:
        for name, what in listed.items():
            print(f"{name:32} {what}")
        return EXIT_OK
    overrides = {"host": args.host, "port": args.port, "latency": args.latency, "skew": args.skew,
                 "catalogs": tuple(args.catalog) if args.catalog else None}
    config = NetworkConfig.from_file(args.config, **overrides) if args.config else NetworkConfig(
        **{k: v for k, v in overrides.items() if v is not None})
    config = dataclasses.replace(
        config, faults=_merged(config.faults, _per_participant(args.fault, "--fault", "FAULT", "no-callback")),
        variations=_merged(config.variations, _per_participant(args.vary, "--vary", "VARIATION", "support-ticket")))
    network = Network(config).start()
    try:
        print(f"{'participant':22} {'role':10} {'subscriber id':40} {'url':46} public key")
        for e in network.endpoints():
            print(f"{e.name:22} {e.role:10} {e.subscriber_id:40} {e.url:46} {e.public_key}")
        for participant, chosen in sorted(config.faults.items()):
            print(f"fault: {participant} {', '.join(sorted(chosen))}")
        for participant, chosen in sorted(config.variations.items()):
            print(f"variation: {participant} {', '.join(sorted(chosen))}")
        print("Ctrl-C stops the network.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        network.stop()
        print("stopped", file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `deg-conformance rules | head`: the reader left, which is not an error
        sys.stderr.close()
        return EXIT_OK


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sandbox":
        try:
            return _sandbox(args)
        except ConfigError as exc:
            print(f"deg-conformance: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        engine = _engine(args)
        if args.command in ("run", "probe"):
            return _run(args, engine)
        if args.command == "rules":
            if args.json:
                print(orjson.dumps([r.as_dict() for r in engine.rules], option=orjson.OPT_INDENT_2).decode())
            else:
                print(reporting.rules_text(engine.rules))
            return EXIT_OK
        messages = transcript.load(args.paths)
        progress = _progress(len(messages))
        report = engine.check(messages, progress=progress)
        if progress is not None:
            print(file=sys.stderr)  # end the progress line
    except ConfigError as exc:
        print(f"deg-conformance: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(orjson.dumps(reporting.as_json(report), option=orjson.OPT_INDENT_2).decode())
    else:
        print(reporting.as_text(report))
    return EXIT_OK if report.passed else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

"""`deg-conformance`: the command-line front end. Parses arguments, calls the engine, prints, exits.

Exit codes (conformance/errors.py): 0 no errors, 1 the target broke a rule, 2 unusable input or arguments, 3
target unreachable, 4 set-up error (no verdict possible), 5 the harness failed (a bug; the traceback is saved).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import orjson

from conformance import __version__, config, coverage, reporting, stream, transcript, usecases
from conformance.engine import Engine, Progress
from conformance.errors import (EXIT_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_SETUP, EXIT_USAGE,
                               ConfigError, SetupError)
from conformance.layer2 import Layer2
from conformance.messages import Message, parse_duration
from conformance.rules import Settings
from conformance.schemas import SchemaSet

REPORTS = Path("reports")
LIVE = ("run", "probe", "replay", "certify")
"""The commands that play against a live target, with the same options, reports and exit codes."""


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
    parser.add_argument("--version", action="version", version=f"deg-conformance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    rules = sub.add_parser("rules", help="list every rule the checks apply")
    rules.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    _schema_options(rules)

    validate = sub.add_parser("validate", help="check captured traffic offline",
                              description="Check captured Beckn messages: folders of JSON files, JSON Lines "
                                          "(plain or wrapped as {received_at, direction, body}), or HAR files.")
    validate.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    validate.add_argument("--json", action="store_true", help="print findings as JSON")
    validate.add_argument("--use-case", metavar="NAME",
                          help="apply this use case's Layer-2 pack to every message, whatever its domain (see "
                               "`deg-conformance run --use-case`; default: the pack of each message's domain)")
    validate.add_argument("--coverage", action="store_true",
                          help="also print which actions and rules the capture exercised, and which rules it never "
                               "did, with why (with --json: a coverage member, as certify's coverage.json)")
    validate.add_argument("--default-ttl", default="PT30S", metavar="DURATION",
                          help="ttl assumed for a request without one, for the callback-timing rule (default PT30S)")
    validate.add_argument("-j", "--jobs", type=_jobs, default=stream.cores(), metavar="N",
                          help="check on up to N processes, sharing the transactions out (default: the "
                               f"{stream.cores()} cores this machine gives; one per {stream.BYTES_PER_JOB // 2**20} "
                               "MiB of input at most); the findings are the same with any N")
    _schema_options(validate)

    sub.add_parser("use-cases", help="list the use cases the package ships (fixtures/<name>/use-case.yaml)")

    report = sub.add_parser("report", help="render a run's Allure results as one HTML file (needs Node.js)",
                            description="Render the Allure results of one or more runs (report folders, or their "
                                        "allure-results) as one self-contained HTML report, with the Allure 3 "
                                        "renderer (npm; no Java).")
    report.add_argument("paths", nargs="+", type=Path, metavar="DIR", help="a run's report folder or allure-results")
    report.add_argument("--out", type=Path, metavar="DIR",
                        help="where the report goes (default allure-report beside the first results)")

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
    sandbox.add_argument("--registry-type", choices=["beckn", "dedi"],
                         help="how the participants look keys up: beckn (POST /lookup, the default) or dedi (GET "
                              "/lookup/{subscriber_id}/{name}/{key_id}); the registry answers both ways")
    sandbox.add_argument("--registry-name", metavar="NAME",
                         help="the registry's DeDi name, which the participants ask under (default deg-sandbox)")
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

    replay = sub.add_parser("replay", help="send a capture's requests again to a target, and judge its new answers",
                            description="Send the requests of captured traffic (HAR, JSON Lines plain or wrapped, a "
                                        "folder of JSON files, or a Postman collection) again, one scenario per "
                                        "original transaction, with fresh transaction ids, message ids and "
                                        "timestamps, signed with the harness's key; the target's new callbacks "
                                        "are judged with the whole catalogue. bpp_id and bpp_uri stay as captured "
                                        "unless a search in the transaction finds new ones; the order id is the new "
                                        "on_confirm's. With --role bpp the target is a BAP: its client endpoint "
                                        "is asked to send each captured transaction's requests again (from its "
                                        "search on), and the harness's BPPs serve the captured on_search catalogs "
                                        "(or --catalog). Same flags, reports and exit codes as run.")
    replay.add_argument("captures", nargs="+", type=Path, metavar="CAPTURE",
                        help="captured traffic, as validate reads it, or a Postman collection")
    replay.add_argument("--env", type=Path, metavar="ENV.json",
                        help="for a Postman collection: a Postman environment whose values fill its {{variables}}")
    _live_options(replay)

    certify = sub.add_parser("certify", help="play a use case's certification profile: its scenarios, then every "
                                             "probe; one verdict, with coverage",
                             description="Play the certification profile of --use-case for --role (fixtures/<use "
                                         "case>/certification.yaml, or --profile): every scenario it names and "
                                         "every probe, in one run and one report folder (Allure, JUnit, summary.json, "
                                         "transcript.jsonl, coverage.json). Certified (exit 0) when everything "
                                         "passed and the profile's required scenarios, probes and actions were all "
                                         "covered; required coverage missing is exit 1, or 4 when the run's set-up "
                                         "kept it from running. Without --target or --gateway, the reference network "
                                         "is certified. Same flags as run.")
    certify.add_argument("--profile", type=Path, metavar="FILE",
                         help="a certification profile of the network's own, in the shipped profiles' format "
                              "(default fixtures/<use case>/certification.yaml)")
    _live_options(certify)
    # One settings file serves every live command: each takes its own options and leaves the others' alone.
    shared = frozenset(a.dest for p in (run, probe, replay, certify) for a in p._actions)  # noqa: SLF001
    for live in (run, probe, replay, certify):
        live.set_defaults(live_settings=shared)
    _keys_commands(sub)
    _import_commands(sub)
    _load_command(sub)
    _verify_certificate_command(sub)
    return parser


def _verify_certificate_command(sub: Any) -> None:
    verify = sub.add_parser(
        "verify-certificate", help="check a certificate's signature and the report files it digests",
        description="Check that a certificate (certificate.json) was signed by the operator's key, given or looked "
                    "up in the network's registry, and that every report file it digests is unchanged. Exit 0 "
                    "valid, 1 changed (each change named), 2 bad input, 4 registry unreachable or key not found.")
    verify.add_argument("certificate", type=Path, metavar="FILE", help="the certificate.json")
    key = verify.add_mutually_exclusive_group(required=True)
    key.add_argument("--public-key", metavar="KEY",
                     help="the operator's base64 Ed25519 public key, or a file holding it")
    key.add_argument("--registry", metavar="URL", help="look the operator's key up in this registry")
    verify.add_argument("--subscriber-id", metavar="ID", help="with --registry: the operator's subscriber id")
    verify.add_argument("--key-id", metavar="K",
                        help="with --registry: the operator's key id (default: the one the certificate names)")
    verify.add_argument("--registry-type", choices=["beckn", "dedi"], default="beckn",
                        help="how keys are looked up there (default beckn; see run --registry-type)")
    verify.add_argument("--registry-name", metavar="NAME", help="with --registry-type dedi: the registry name")
    verify.add_argument("--ca-bundle", type=Path, metavar="FILE", help="CA certificates to trust for the registry")
    verify.add_argument("--report-dir", type=Path, metavar="DIR",
                        help="the report folder whose files the certificate digests (default: the certificate's)")
    verify.add_argument("--json", action="store_true", help="print the verification as JSON")


def _load_command(sub: Any) -> None:
    """`load`: the scenarios played by many simulated users at once, on Locust (conformance/load/)."""
    load = sub.add_parser(
        "load", help="play scenarios with many simulated users at once (Locust), and judge what came back",
        description="Each simulated user plays whole scenarios, one after another, each in a fresh transaction, "
                    "against a BPP (--target) or a gateway (--gateway); each Locust process has its own callback "
                    "listener. Reports ACK and callback latency per action, flows/s, lost, duplicated and misrouted "
                    "callbacks and the rule findings under load (load-summary.json), and Locust's CSV and HTML, "
                    "in --report-dir. Distributed: one --master with the plan, --worker processes with --master-host.")
    load.add_argument("scenarios", nargs="*", type=Path, default=[], metavar="SCENARIO",
                      help="scenario files or folders (default: the use case's role-bap scenarios)")
    load.add_argument("--role", choices=["bap"], default="bap", help="the part the harness plays (bap only)")
    load.add_argument("--use-case", default=usecases.DEFAULT, metavar="NAME", help="the use case (its scenarios)")
    load.add_argument("--target", metavar="URL", help="the BPP under load: every request goes there")
    load.add_argument("--gateway", metavar="URL", help="a gateway: searches go there, later requests to the BPP chosen")
    load.add_argument("--registry", metavar="URL", help="the registry to look signing keys up in")
    load.add_argument("--registry-type", choices=["beckn", "dedi"], default="beckn")
    load.add_argument("--registry-name", metavar="NAME")
    load.add_argument("--fault", action="append", default=[], metavar="PARTICIPANT=FAULT",
                      help="with no --target or --gateway (a local run against the reference network): a fault switch")
    load.add_argument("--signatures", choices=["required", "optional", "off"], default="required")
    load.add_argument("--ack-timeout", type=float, default=5.0, metavar="SECONDS")
    load.add_argument("--callback-timeout", type=float, metavar="SECONDS")
    load.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    load.add_argument("--vars", type=Path, metavar="FILE")
    load.add_argument("--users", "-u", type=int, default=8, metavar="N", help="simulated users, all workers together")
    load.add_argument("--spawn-rate", "-r", type=float, default=8.0, metavar="R", help="users started per second")
    load.add_argument("--run-time", "-t", default="30s", metavar="T", help="how long (30s, 5m, 1h30m)")
    load.add_argument("--report-dir", type=Path, metavar="DIR", help="where reports go (default reports/load-<time>/)")
    mode = load.add_mutually_exclusive_group()
    mode.add_argument("--master", action="store_true", help="run the plan on --expect-workers workers")
    mode.add_argument("--worker", action="store_true", help="play what the master at --master-host says")
    load.add_argument("--master-host", default="127.0.0.1", metavar="HOST",
                      help="as worker: the master's address; as master: the address to listen on for workers")
    load.add_argument("--master-port", type=int, default=5557, metavar="PORT")
    load.add_argument("--expect-workers", type=int, default=1, metavar="N")
    load.add_argument("--expect-workers-max-wait", type=int, default=60, metavar="SECONDS",
                      help="as master: give up (exit 4) when the workers have not all come by then (default 60)")
    load.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT", help="this process's callback listener")
    load.add_argument("--callback-url", metavar="URL", help="the public URL of --listen, when it differs")
    load.add_argument("--subscriber-id", default="deg-conformance.local")
    load.add_argument("--key-id", default="deg-conformance-key-1")
    load.add_argument("--key-file", type=Path, metavar="FILE", help="the harness's key (default: a fresh one)")
    load.add_argument("--ca-bundle", type=Path, metavar="FILE")
    load.set_defaults(load_defaults={a.dest: a.default for a in load._actions})  # noqa: SLF001


LOAD_PLAN = ("scenarios", "target", "gateway", "registry", "registry_type", "registry_name", "use_case", "fault",
             "signatures", "ack_timeout", "callback_timeout", "var", "vars", "users", "spawn_rate", "run_time",
             "report_dir", "expect_workers", "expect_workers_max_wait")
"""`load` options of the master's (or a local run's): a worker plays what its master says."""
LOAD_IDENTITY = ("listen", "callback_url", "subscriber_id", "key_id", "key_file", "ca_bundle")
"""`load` options of each worker's own (or a local run's): a master plays nothing itself."""


def _live_options(parser: argparse.ArgumentParser) -> None:
    """The options `run` and `probe` share: who the target is, who the harness is, how long to wait, reports."""
    parser.add_argument("--role", choices=["bap", "bpp"], default="bap",
                        help="the part the harness plays (default bap)")
    parser.add_argument("--use-case", default=usecases.DEFAULT, metavar="NAME",
                        help=f"the use case (a folder of fixtures/ with a use-case.yaml): its scenarios (the default "
                             f"SCENARIO), its request bodies for the probes, its catalogs for the harness's BPPs "
                             f"(default {usecases.DEFAULT}; `deg-conformance use-cases` lists them)")
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
    parser.add_argument("--registry-type", choices=["beckn", "dedi"], default="beckn",
                        help="how keys are looked up there: beckn (POST /lookup, the default) or dedi (GET "
                             "/lookup/{subscriber_id}/{name}/{key_id}, as the DEG sandbox's registry answers)")
    parser.add_argument("--registry-name", metavar="NAME",
                        help="with --registry-type dedi: the registry name to look keys up under (default "
                             "subscribers.beckn.one, every registry)")
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
    parser.add_argument("--vary", action="append", default=[], metavar="PARTICIPANT=VARIATION",
                        help="with the reference network: make a participant differ from it while conforming (see "
                             "sandbox --list-variations)")
    parser.add_argument("--register", action="append", default=[], type=Path, metavar="FILE",
                        help="registry entries (what `keys new` prints) for the registry the harness runs: as BPP, "
                             "the BAP under test's key; repeatable")
    parser.add_argument("--print-network", action="store_true",
                        help="as BPP: print the addresses of the registry, gateway and BPPs the run will serve (for "
                             "configuring the BAP under test first), and exit")
    parser.add_argument("--report-dir", type=Path, metavar="DIR",
                        help="where reports go (default reports/<run-id>/)")
    parser.add_argument("--json", action="store_true", help="print summary.json to stdout")
    parser.add_argument("--certificate-key", type=Path, metavar="FILE",
                        help="after the reports, sign them: certificate.json (with certificate.svg and "
                             "certificate.html) in the report folder, signed with this operator's key file (the "
                             "--key-file format) as the owner it names (`keys new` writes it), else as "
                             "--subscriber-id and --key-id; see `verify-certificate`")
    parser.add_argument("-n", dest="concurrency", type=int, default=1, metavar="N",
                        help="scenarios played at once (default 1)")
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                        help="a value for the scenarios' templates, over their own; it also pins the offer a "
                             "scenario picks from the target's catalog (e.g. --var item_id=my-program); repeatable")
    parser.add_argument("--vars", type=Path, metavar="FILE",
                        help="a YAML file of NAME: VALUE pairs, as --var (which wins)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="a settings file for every option here (default ./deg-conformance.yaml, else "
                             "[tool.deg-conformance] in ./pyproject.toml); DEG_CONFORMANCE_<OPTION> environment "
                             "variables win over it, and flags over both")
    parser.add_argument("--junitxml", type=Path, metavar="FILE", help="also write the JUnit XML report here")
    parser.add_argument("--fail-on", choices=["error", "warning"], default="error",
                        help="what fails the run (exit 1): findings of severity error (default), or warnings too")
    parser.add_argument("--exclude-rules", metavar="ID,...",
                        help="rules not to report, by id or pattern (L2_*); the reports list them")
    parser.add_argument("--waivers", type=Path, metavar="FILE",
                        help="a YAML list of waivers {rule, reason, scenario?, path?, until?}: waived findings are "
                             "shown, with the reason, and do not count")
    parser.add_argument("--ca-bundle", type=Path, metavar="FILE",
                        help="CA certificates to trust for the target and registry (default: the system's, or "
                             "SSL_CERT_FILE); proxies come from HTTPS_PROXY / NO_PROXY")
    _schema_options(parser)
    # Every option's default is applied after the environment and the settings file (conformance/config.py): the
    # parser leaves what the command line does not give as None, so that config.layer can tell.
    defaults = {a.dest: a.default for a in parser._actions if a.dest != "help"}  # noqa: SLF001
    parser.set_defaults(**{dest: None for dest in defaults}, live_parser=parser, live_defaults=defaults)


def _keys_commands(sub: Any) -> None:
    """`keys new|show|subscribe`: the harness's signing key, and the registry entry that publishes it."""
    keys = sub.add_parser("keys", help="make a signing key and the registry entry that publishes it",
                          description="Make the harness's identity on a network: an Ed25519 key in a file (what "
                                      "--key-file reads) and the registry entry to publish, as a Beckn /subscribe "
                                      "body and as a DeDi record's details.")
    what = keys.add_subparsers(dest="keys_command", required=True)
    new = what.add_parser("new", help="generate a key, write it to --out, print the entry to publish")
    new.add_argument("--out", type=Path, required=True, metavar="FILE",
                     help="where the private key goes (created with mode 0600; never printed)")
    new.add_argument("--force", action="store_true", help="replace --out if it exists (its key is then lost)")
    _entry_options(new, required=False)
    show = what.add_parser("show", help="print the public key and the entry to publish of an existing key file")
    show.add_argument("--key-file", type=Path, required=True, metavar="FILE", help="the base64 private key")
    _entry_options(show, required=False)
    subscribe = what.add_parser("subscribe", help="register the entry in a Beckn registry (POST {registry}/subscribe)")
    subscribe.add_argument("--registry", required=True, metavar="URL", help="the registry's base URL")
    subscribe.add_argument("--key-file", type=Path, required=True, metavar="FILE", help="the base64 private key")
    _entry_options(subscribe, required=True)


def _import_commands(sub: Any) -> None:
    """`import postman`: other tools' test material as scenario files that `run` plays unchanged."""
    imports = sub.add_parser("import", help="turn other tools' test material into scenarios",
                             description="Write scenario files (and their body fixtures) that `deg-conformance run` "
                                         "plays unchanged, from another tool's test material.")
    what = imports.add_subparsers(dest="import_format", required=True)
    postman = what.add_parser(
        "postman", help="a Postman collection (v2.x) as scenarios that play the BAP",
        description="A Postman collection's Beckn 1.1.0 requests as scenarios, a folder's flow each (a discovery "
                    "folder's first search goes on into its parent's select/init/confirm, its other searches stand "
                    "alone), each body a fixture beside its scenario. The harness owns what is the BAP's own and "
                    "saves bpp_id, bpp_uri and the order id from the target's callbacks; other {{variables}} take "
                    "the collection's (and --env's) values. Requests that are not Beckn are skipped, and each "
                    "request's defects are noted, on stderr. Beckn 2.0 collections are refused. See "
                    "docs/postman-import.md.")
    postman.add_argument("collection", type=Path, metavar="COLLECTION.json")
    postman.add_argument("--env", type=Path, metavar="ENV.json",
                         help="a Postman environment (its enabled values fill {{variables}}, over the collection's)")
    postman.add_argument("--out", type=Path, required=True, metavar="DIR",
                         help="where the scenarios go (made when missing; files of the same names are replaced)")


def _entry_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """Whose key it is, as the registry entry says; `subscribe` needs every part, `new` and `show` fill in the
    harness's defaults."""
    def default(value: str) -> str:
        return "" if required else f" (default {value})"

    parser.add_argument("--subscriber-id", required=required, default="deg-conformance.local",
                        help=f"the subscriber id{default('deg-conformance.local')}")
    parser.add_argument("--key-id", required=required, default="deg-conformance-key-1",
                        help=f"the unique key id{default('deg-conformance-key-1')}")
    parser.add_argument("--url", required=required, metavar="URL",
                        help="the subscriber's URL: the harness's --callback-url as BAP, a BPP's base URL")
    parser.add_argument("--type", required=required, default="BAP", choices=["BAP", "BPP", "BG"],
                        help=f"the subscriber's role{default('BAP')}")
    parser.add_argument("--domain", required=required, default="flexibility",
                        help=f"the network domain{default('flexibility')}")
    parser.add_argument("--city", metavar="CODE", help="the city code the subscriber serves, e.g. std:080")


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (1 or more)")
    return value


def _engine(args: argparse.Namespace, quiet: bool = False) -> Engine:
    """The engine the options describe; `quiet` in a worker process, where the main process said it all."""
    schemas = SchemaSet.from_document(args.spec) if args.spec else SchemaSet.builtin()
    layer2 = Layer2(schemas, file=args.layer2, directory=args.layer2_dir, builtin=not args.no_layer2)
    if args.command == "validate" and args.use_case:
        if args.layer2 or args.layer2_dir or args.no_layer2:
            raise ConfigError("--use-case chooses the Layer-2 pack: drop --layer2, --layer2-dir or --no-layer2")
        pack = usecases.pack_file(usecases.named(args.use_case))
        if pack is None and not quiet:
            print(f"deg-conformance: use case {args.use_case} has no Layer-2 pack: its Layer-2 checks are skipped",
                  file=sys.stderr)
        layer2 = Layer2(schemas, file=pack, builtin=False)
    ttl = parse_duration(getattr(args, "default_ttl", "PT30S"))
    if ttl is None:
        raise ConfigError(f"--default-ttl {args.default_ttl!r} is not an ISO 8601 duration (e.g. PT30S)")
    return Engine(schemas=schemas, layer2=layer2, settings=Settings(default_ttl=ttl))


def _capture_coverage(args: argparse.Namespace, engine: Engine, messages: list[Message]) -> dict[str, Any]:
    """What a capture exercised: its use case is --use-case's, else that of its first message's domain."""
    domain = next((m.context.get("domain") for m in messages if m.usable), None)
    use_case = usecases.named(args.use_case) if args.use_case else usecases.of_domain(domain)
    assert engine.evaluated is not None
    subject = coverage.Subject(use_case=use_case.name if use_case else None,
                               domain=use_case.domain if use_case else domain if isinstance(domain, str) else None)
    return coverage.measure(messages, engine, engine.evaluated, subject)


PROGRESS_FROM = 5000
"""Messages from which a terminal is shown how far the check has gone."""


def _progress() -> Progress | None:
    if not sys.stderr.isatty():
        return None
    started = time.monotonic()

    def show(done: int) -> None:
        if done >= PROGRESS_FROM:
            rate = done / max(time.monotonic() - started, 1e-9)
            print(f"\rchecked {done} messages ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)

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


def _variables(pairs: list[str], file: Path | None) -> dict[str, Any]:
    """--vars FILE, then every --var NAME=VALUE over it."""
    from conformance.errors import load_yaml
    from conformance.scenario import NAME

    values: dict[str, Any] = {}
    if file is not None:
        doc = load_yaml(file)
        if not isinstance(doc, dict):
            raise ConfigError(f"--vars {file}: write a mapping of NAME: VALUE")
        values.update({str(k): v for k, v in doc.items()})
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--var {pair!r}: write NAME=VALUE, e.g. item_id=my-program")
        values[name.strip()] = value
    bad = sorted(name for name in values if not NAME.fullmatch(name))
    if bad:
        raise ConfigError(f"variable names must be identifiers (letters, digits, _): {', '.join(map(repr, bad))}")
    return values


def _scenarios(paths: list[Path], role: str) -> list[Any]:
    """The scenarios to play: every file named, and of each folder the scenarios of this role (a suite holds
    both roles'); a file of the other role is refused when the run starts, naming it."""
    from conformance import scenario

    chosen = []
    for path in paths:
        loaded = [scenario.load(p) for p in scenario.discover([path])]
        chosen += [s for s in loaded if s.role == role] if path.is_dir() else loaded
    if not chosen:
        raise ConfigError(f"no scenario in {', '.join(map(str, paths))} plays {role} (--role)")
    return chosen


def _run(args: argparse.Namespace, engine: Engine) -> int:
    # Imported here: the runner pulls in the network stack, which validate and rules do not need.
    from conformance import certify, profiles, waivers
    from conformance.findings import Severity
    from conformance.keys import load_key_file, owner_of, read_key_file, registrations
    from conformance.network import NetworkConfig
    from conformance.reporting.junit import junit_xml
    from conformance.reporting.live import run_text, step_line, write_reports
    from conformance.reporting.run_summary import summary
    from conformance.runner import Harness, RunConfig, bpp_addresses, new_run_id
    from conformance.waivers import Policy

    probing = args.command == "probe"
    use_case = usecases.named(args.use_case)
    profile = profiles.of(use_case.name, args.role, args.profile) if args.command == "certify" else None
    run_id = new_run_id()
    report_dir = args.report_dir or REPORTS / run_id
    if engine.layer2.pack_for(use_case.domain, use_case.version) is None:
        print(f"use case {use_case.name} ({use_case.domain} {use_case.version}) has no Layer-2 pack: its Layer-2 "
              "checks and probes are skipped", file=sys.stderr)
    if args.fault and (args.target or args.gateway):
        raise ConfigError("--fault applies to the reference network, which --target/--gateway replace")
    if args.role == "bpp" and args.gateway:
        raise ConfigError("--gateway is for --role bap; as BPP the harness starts its own gateway")
    if args.role == "bap" and (args.catalog or args.drive != "trigger"):
        raise ConfigError("--catalog and --drive are for --role bpp")
    faults = _per_participant(args.fault, "--fault", "FAULT", "no-callback")
    variations = _per_participant(args.vary, "--vary", "VARIATION", "support-ticket")
    if variations and (args.target or args.gateway):
        raise ConfigError("--vary applies to the reference network, which --target/--gateway replace")
    if args.print_network and args.role != "bpp":
        raise ConfigError("--print-network is for --role bpp: as BAP the harness serves only its callback URL")
    if args.command == "replay":
        scenarios = _replayed(args, report_dir)
    elif profile is not None:
        if args.role == "bpp" and args.drive != "trigger":  # refused now, not after the scenarios were played
            raise ConfigError("certify plays the probes, which as BPP need --drive trigger (each asks the BAP for a "
                              "search): play the passive-drive scenarios with `run --role bpp --drive passive`")
        scenarios = profile.scenarios()
    else:
        scenarios = [] if probing else _scenarios(args.scenarios or [use_case.scenarios], args.role)
    config = RunConfig(
        role=args.role, use_case=args.use_case, drive=args.drive, catalogs=tuple(args.catalog),
        target=args.target, gateway=args.gateway, registry=args.registry, listen=args.listen,
        registry_type=args.registry_type, registry_name=args.registry_name,
        callback_url=args.callback_url, subscriber_id=args.subscriber_id, key_id=args.key_id,
        private_key=load_key_file(args.key_file) if args.key_file else None, signatures=args.signatures,
        ack_timeout=args.ack_timeout, callback_timeout=args.callback_timeout, concurrency=args.concurrency,
        variables=_variables(args.var, args.vars),
        registrations=tuple(entry for path in args.register for entry in registrations(path)),
        ca_bundle=args.ca_bundle,
        policy=Policy(exclude=waivers.patterns(args.exclude_rules), fail_on=Severity(args.fail_on),
                      waivers=waivers.load(args.waivers) if args.waivers else ()),
        network=NetworkConfig(faults=faults, variations=variations) if faults or variations else None)
    # Read before the run, not after it: a key file that cannot be used must not cost a whole run.
    operator = None
    if args.certificate_key:  # an operator's key file names its owner; a bare key signs as the run's identity
        owner = owner_of(args.certificate_key) or (args.subscriber_id, args.key_id)
        operator = read_key_file(args.certificate_key, *owner, flag="--certificate-key")
    if operator is not None and args.key_file and (operator.subscriber_id, operator.unique_key_id) == (
            args.subscriber_id, args.key_id) and (
            read_key_file(args.key_file, args.subscriber_id, args.key_id).public_key != operator.public_key):
        print(f"note: --certificate-key holds another key than --key-file; a verifier looking up "
              f"{args.subscriber_id}|{args.key_id} in the registry finds the --key-file one, unless you publish this "
              f"one there (or give verifiers its public key, {operator.public_key})", file=sys.stderr)
    if args.print_network:
        rows = bpp_addresses(config)
        width = max(len(r[0]) for r in rows)
        for what, subscriber, url, public in rows:
            print(f"{what:{width}}  {subscriber:44} {url:50} {public}")
        print("the BAP under test: use this gateway and registry; put its registry entry in a file for --register "
              "(what `deg-conformance keys new` prints)", file=sys.stderr)
        return EXIT_OK
    _report_folder(report_dir)  # before the run, not after it: a run whose reports cannot be written is lost

    lock = threading.Lock()

    def progress(scenario_result: Any, step: Any | None) -> None:
        with lock:  # scenarios run on several threads: one whole line at a time
            sys.stderr.write(step_line(scenario_result, step) + "\n")
            sys.stderr.flush()

    def notify(text: str) -> None:
        with lock:
            sys.stderr.write(f">>> {text}\n")
            sys.stderr.flush()

    try:
        with Harness(config, engine=engine, progress=progress, notify=notify) as harness, _interruptible(harness):
            if args.role == "bpp":
                where = args.target or "the reference BAP"
                print(f"run {run_id}: {len(scenarios)} scenario(s) against {where} as BPP; the harness's BPPs: "
                      f"{', '.join(f'{b.key.subscriber_id} at {b.url}' for b in harness.bpps.values())}; "
                      f"gateway {harness.gateway}, registry {harness.registry}", file=sys.stderr, flush=True)
            else:
                where = "the reference network" if harness.network else (args.target or args.gateway)
                if probing:
                    what = "the probes"
                elif profile is not None:
                    what = (f"the {use_case.name} certification profile ({len(scenarios)} scenario(s), then the "
                            f"probes)")
                elif args.command == "replay":
                    what = f"{len(scenarios)} transaction(s) replayed from {', '.join(map(str, args.captures))}"
                else:
                    what = f"{len(scenarios)} scenario(s){' and the probes' * args.probes}"
                print(f"run {run_id}: {what} against {where}, callbacks at {harness.callback_url}",
                      file=sys.stderr, flush=True)
            result = harness.run(scenarios, run_id,
                                 probes=probing or profile is not None or getattr(args, "probes", False))
        write_reports(result, report_dir, participant=where or "?")
        if args.junitxml is not None:
            args.junitxml.parent.mkdir(parents=True, exist_ok=True)
            args.junitxml.write_bytes(junit_xml(result))
        code = result.exit_code
        if profile is not None:
            covered = certify.measure(result, profile, engine, report_dir)
            code = coverage.exit_code(code, covered)
            certify.write(report_dir, covered, profile, code)
        if operator is not None:  # after coverage.json and summary.json are final: the certificate digests them
            _certify_run(report_dir, operator, role=args.role, target=args.target or args.gateway,
                         use_case=use_case, profile=profile.path if profile is not None else None)
    except (ConfigError, SetupError):
        raise
    except Exception as exc:  # a bug of the harness: its traceback goes with this run's reports
        raise Crashed(report_dir / "harness-error.log") from exc
    if args.json:
        shown = (orjson.loads((report_dir / "summary.json").read_bytes()) if profile is not None
                 else summary(result))
        print(orjson.dumps(shown, option=orjson.OPT_INDENT_2, default=str).decode())
    else:
        print(run_text(result))
        if profile is not None:
            print(coverage.table(covered))
            print(f"certification of {use_case.name} as {profile.role}: "
                  f"{'CERTIFIED' if code == EXIT_OK else 'NOT CERTIFIED'} (exit code {code})")
    if any(s.internal_error for s in result.scenarios):
        print(f"deg-conformance: internal error: a bug of the harness, not a verdict on the target; the traceback "
              f"is in {report_dir / 'harness-error.log'}", file=sys.stderr)
    print(f"reports in {report_dir}/", file=sys.stderr)
    return code


def _load(args: argparse.Namespace) -> int:
    from conformance import load
    from conformance.keys import load_key_file
    from conformance.load.settings import Identity, Plan
    from conformance.runner import new_run_id

    def given(dests: tuple[str, ...]) -> str:
        return ", ".join("SCENARIO" if d == "scenarios" else f"--{d.replace('_', '-')}" for d in dests
                         if getattr(args, d) != args.load_defaults[d])

    if args.worker and given(LOAD_PLAN):
        raise ConfigError(f"{given(LOAD_PLAN)}: the master's plan; a --worker plays what its master says")
    if args.master and given(LOAD_IDENTITY):
        raise ConfigError(f"{given(LOAD_IDENTITY)}: each worker's own; a --master plays nothing itself")
    use_case = usecases.named(args.use_case)
    scenarios = [] if args.worker else _scenarios(args.scenarios or [use_case.scenarios], "bap")
    plan = Plan(target=args.target, gateway=args.gateway, registry=args.registry, registry_type=args.registry_type,
                registry_name=args.registry_name, use_case=args.use_case,
                scenarios=tuple(str(s.path.resolve()) for s in scenarios), signatures=args.signatures,
                ack_timeout=args.ack_timeout, callback_timeout=args.callback_timeout,
                variables=_variables(args.var, args.vars),
                faults={p: tuple(sorted(f)) for p, f in
                        _per_participant(args.fault, "--fault", "FAULT", "no-callback").items()})
    identity = Identity(listen=args.listen, callback_url=args.callback_url, subscriber_id=args.subscriber_id,
                        key_id=args.key_id, private_key=load_key_file(args.key_file) if args.key_file else None,
                        ca_bundle=str(args.ca_bundle) if args.ca_bundle else None)
    mode = "master" if args.master else "worker" if args.worker else "local"
    return load.run(load.LoadConfig(
        mode=mode, plan=plan, identity=identity, users=args.users, spawn_rate=args.spawn_rate, run_time=args.run_time,
        report_dir=args.report_dir or REPORTS / f"load-{new_run_id()}", master_host=args.master_host,
        master_port=args.master_port, expect_workers=args.expect_workers,
        expect_workers_max_wait=args.expect_workers_max_wait))


def _certify_run(report_dir: Path, operator: Any, *, role: str, target: str | None, use_case: Any,
                 profile: Path | None = None) -> None:
    """`--certificate-key`: the run's reports (and its coverage.json, when a certification wrote one, and the
    digest of its `profile`) signed in the process that wrote them, so that nothing can be edited between the run
    and its certificate. The participant's role is the other than the harness's."""
    from conformance import certificate

    judged = "bap" if role == "bpp" else "bpp"
    participant = certificate.participant_of(report_dir, role=judged, target=target, use_case=use_case.name,
                                             domain=use_case.domain)
    path = certificate.issue(report_dir, participant=participant, key=operator, profile=profile)
    print(f"certificate: {path} (with {certificate.BADGE} and {certificate.PAGE}), signed by "
          f"{operator.subscriber_id}|{operator.unique_key_id}", file=sys.stderr)


def _verify_certificate(args: argparse.Namespace) -> int:
    """`verify-certificate`: 0 valid, 1 changed (naming each change), 2 bad input, 4 the operator's key cannot be
    looked up."""
    from conformance import certificate

    if args.registry is not None and not args.subscriber_id:
        raise ConfigError("--registry needs --subscriber-id: the operator whose key signs certificates (a "
                          "certificate's own claim of who signed it is never trusted)")
    if args.public_key is not None and (args.subscriber_id or args.key_id):
        raise ConfigError("--subscriber-id and --key-id are for --registry; --public-key is the key itself")
    if args.report_dir is not None and not args.report_dir.is_dir():
        raise ConfigError(f"--report-dir {args.report_dir}: no such folder")
    if args.public_key is not None:
        given = certificate.public_key_argument(args.public_key)

        def key(document: Mapping[str, Any]) -> str:
            return given
    else:
        def key(document: Mapping[str, Any]) -> str:
            return certificate.registry_key(args.registry, args.subscriber_id,
                                            args.key_id or document["issuer"]["key_id"], kind=args.registry_type,
                                            name=args.registry_name, ca_bundle=args.ca_bundle)
    found = certificate.verify(args.certificate, key=key, report_dir=args.report_dir)
    document = found.certificate or {}
    if args.json:
        print(orjson.dumps({"valid": found.valid, "problems": found.problems, "notes": found.notes,
                            "files_checked": found.checked_files, "verdict": document.get("verdict"),
                            "participant": document.get("participant")}, option=orjson.OPT_INDENT_2).decode())
    for note in found.notes:
        print(f"note: {note}", file=sys.stderr)
    if not found.valid:
        for problem in found.problems:
            print(f"INVALID {problem}", file=sys.stderr if args.json else sys.stdout)
        return EXIT_FAILED
    if not args.json:
        participant = document["participant"]
        who = participant["subscriber_id"] or participant["target"] or "the reference network"
        print(f"VALID certificate: {document['verdict'].upper()} for {who} as "
              f"{participant['role'].upper()} ({participant['use_case']}), run {document['run']['run_id']}, issued "
              f"{document['issued_at']} by {document['issuer']['subscriber_id']}; {found.checked_files} report "
              f"file(s) unchanged")
    return EXIT_OK


def _report_folder(report_dir: Path) -> None:
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--report-dir {report_dir}: cannot write reports there: {exc.strerror or exc}") from None


def _replayed(args: argparse.Namespace, report_dir: Path) -> list[Any]:
    """`replay`'s scenarios, a captured transaction each; a Postman collection's imported beside the reports."""
    from conformance import replay

    _report_folder(report_dir)  # what is imported (a collection's scenarios, the catalogs to serve) goes in it

    def note(text: str) -> None:
        print(f"replay: {text}", file=sys.stderr)

    # As BPP, the harness's BPPs publish what the captured ones did, unless --catalog says otherwise.
    serve = report_dir / "imported" / "catalogs" if args.role == "bpp" and not args.catalog else None
    played = replay.scenarios(args.captures, imported=report_dir / "imported", env=args.env, role=args.role,
                              serve=serve, note=note)
    if serve is not None:
        args.catalog = sorted(serve.glob("*.json"))
        note(f"serving the captured catalogs: {', '.join(str(p) for p in args.catalog)}")
    return played


@contextmanager
def _interruptible(harness: Any) -> Iterator[None]:
    """Ctrl-C once: no new step or scenario starts, every wait ends, and the run reports what finished (exit
    130); twice: quit at once. Only the main thread receives signals (elsewhere, nothing is installed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        if harness.interrupted:
            print("deg-conformance: interrupted again: quitting without reports", file=sys.stderr, flush=True)
            os._exit(EXIT_INTERRUPTED)
        print("deg-conformance: interrupted: ending the steps under way, then writing the reports (Ctrl-C again "
              "to quit at once)", file=sys.stderr, flush=True)
        harness.interrupt()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Crashed(Exception):
    """The harness failed during a run; `log` is where its traceback belongs (beside the run's reports)."""

    def __init__(self, log: Path) -> None:
        super().__init__(str(log))
        self.log = log


def _keys(args: argparse.Namespace) -> int:
    # Imported here: keys pulls in the runner and the network stack, which validate and rules do not need.
    from conformance import keys

    if args.keys_command == "new":
        key = keys.new_key_file(args.out, args.subscriber_id, args.key_id, force=args.force)
        print(f"wrote the private key to {args.out} (mode 0600)", file=sys.stderr)
    else:
        key = keys.read_key_file(args.key_file, args.subscriber_id, args.key_id)
    published = keys.publication(keys.entry(key, url=args.url, type=args.type, domain=args.domain, city=args.city))
    if args.keys_command == "subscribe":
        status, answer = keys.subscribe(args.registry, published["beckn_subscribe"])
        print(f"{args.registry.rstrip('/')}/subscribe answered HTTP {status}", file=sys.stderr)
        print(answer if isinstance(answer, str) else orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        return EXIT_OK
    print(orjson.dumps(published, option=orjson.OPT_INDENT_2).decode())
    print("publish it: `deg-conformance keys subscribe` for a Beckn registry; a DeDi registry through its own "
          f"publishing API{'' if args.url else ', after adding the subscriber URL (--url)'}", file=sys.stderr)
    return EXIT_OK


def _import(args: argparse.Namespace) -> int:
    from conformance import postman

    imported = postman.import_collection(args.collection, args.out, env=args.env)
    for note in imported.notes:
        print(note, file=sys.stderr)
    for path in imported.scenarios:
        print(path)
    print(f"{len(imported.scenarios)} scenario(s) in {args.out}/, {imported.skipped} request(s) skipped; play them "
          f"with `deg-conformance run {args.out} --target URL`", file=sys.stderr)
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from conformance.reporting import html

    folders = html.results_folders(args.paths)
    out = args.out or folders[0].parent / "allure-report"
    checkout = Path(__file__).resolve().parents[1]  # a checkout's package.json pins the renderer in node_modules
    print(f"Allure report: {html.render(args.paths, out, checkout=checkout)}")
    return EXIT_OK


def _sandbox(args: argparse.Namespace) -> int:
    # Imported here: the network pulls in uvicorn and Starlette, which validate and rules do not need.
    from conformance.network import FAULTS, VARIATIONS, NetworkConfig, NetworkProcess

    listed = FAULTS if args.list_faults else VARIATIONS if args.list_variations else None
    if listed is not None:
        for name, what in listed.items():
            print(f"{name:32} {what}")
        return EXIT_OK
    overrides = {"host": args.host, "port": args.port, "latency": args.latency, "skew": args.skew,
                 "registry_type": args.registry_type, "registry_name": args.registry_name,
                 "catalogs": tuple(args.catalog) if args.catalog else None}
    config = NetworkConfig.from_file(args.config, **overrides) if args.config else NetworkConfig(
        **{k: v for k, v in overrides.items() if v is not None})
    config = dataclasses.replace(
        config, faults=_merged(config.faults, _per_participant(args.fault, "--fault", "FAULT", "no-callback")),
        variations=_merged(config.variations, _per_participant(args.vary, "--vary", "VARIATION", "support-ticket")))
    network = NetworkProcess(config).start()
    try:
        print(f"{'participant':22} {'role':10} {'subscriber id':40} {'url':46} public key")
        for e in network.endpoints():
            print(f"{e.name:22} {e.role:10} {e.subscriber_id:40} {e.url:46} {e.public_key}")
        print(f"registry {config.registry_name}: Beckn POST {network.registry_url}/lookup and DeDi GET "
              f"{network.registry_url}/lookup/{{subscriber_id}}/{config.registry_name}/{{key_id}}; the participants "
              f"look keys up the {config.registry_type} way", file=sys.stderr)
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
    except KeyboardInterrupt:  # before a run could be told (starting up, reading files)
        print("deg-conformance: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SetupError as exc:
        print(f"deg-conformance: set-up error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    except Exception as exc:  # noqa: BLE001 - a bug of the harness: never exit 1, which would blame the target
        bug = exc.__cause__ if isinstance(exc, Crashed) and exc.__cause__ is not None else exc
        log = exc.log if isinstance(exc, Crashed) else Path(tempfile.gettempdir()) / f"deg-conformance-{os.getpid()}.log"
        try:
            log.write_text("".join(traceback.format_exception(bug)), encoding="utf-8")
            where = f"the traceback is in {log}"
        except OSError:
            where = "the traceback could not be saved"
        print(f"deg-conformance: internal error ({type(bug).__name__}): a bug of the harness, not a verdict on the "
              f"target; {where}", file=sys.stderr)
        return EXIT_INTERNAL


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sandbox":
        try:
            return _sandbox(args)
        except ConfigError as exc:
            print(f"deg-conformance: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        if args.command == "keys":
            return _keys(args)
        if args.command == "report":
            return _report(args)
        if args.command == "use-cases":
            for u in usecases.shipped().values():
                pack = usecases.pack_file(u)
                scenarios = len(list(u.scenarios.rglob("*.yaml"))) if u.scenarios.is_dir() else 0
                print(f"{u.name:22} {u.domain:20} {len(u.catalogs)} catalog(s), {scenarios} scenario(s), "
                      f"{'Layer-2 pack ' + pack.name if pack else 'no Layer-2 pack'}  {u.title}")
            return EXIT_OK
        if args.command == "import":
            return _import(args)
        if args.command == "load":
            return _load(args)
        if args.command == "verify-certificate":
            return _verify_certificate(args)
        if args.command in LIVE:
            config.layer(args.live_parser, args, args.live_defaults, others=args.live_settings)
        engine = _engine(args)
        if args.command in LIVE:
            return _run(args, engine)
        if args.command == "rules":
            if args.json:
                print(orjson.dumps([r.as_dict() for r in engine.rules], option=orjson.OPT_INDENT_2).decode())
            else:
                print(reporting.rules_text(engine.rules))
            return EXIT_OK
        progress = _progress()
        covered = None
        if args.coverage:  # coverage reads every message of the capture: it is loaded whole
            messages = transcript.load(args.paths)
            engine.evaluated = set()
            report = engine.check(messages, progress=progress)
            covered = _capture_coverage(args, engine, messages)
        else:
            report = stream.check(args.paths, engine, jobs=args.jobs, progress=progress,
                                  factory=functools.partial(_engine, args, quiet=True),
                                  note=lambda text: print(f"deg-conformance: {text}", file=sys.stderr))
        if progress is not None and report.messages >= PROGRESS_FROM:
            print(file=sys.stderr)  # end the progress line
    except ConfigError as exc:
        print(f"deg-conformance: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        doc = reporting.as_json(report)
        print(orjson.dumps({**doc, "coverage": covered} if covered is not None else doc,
                           option=orjson.OPT_INDENT_2).decode())
    else:
        print(reporting.as_text(report))
        if covered is not None:
            print(coverage.table(covered))
    return EXIT_OK if report.passed else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

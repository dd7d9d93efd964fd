"""`deg-conformance keys`: a key file only its owner reads, the entry that publishes the key, and subscribing it
to a Beckn registry, after which the network accepts what the key signs. Every failure is one line, exit 2."""
from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from conformance.cli import main
from conformance.messages import parse_timestamp
from conformance.network import Network, NetworkConfig, start
from conformance.keys import load_key_file
from conformance.signing import KeyPair
from tests._live import closed_port_url, serve, signed_search

Capture = pytest.CaptureFixture[str]
BPP = "sf-grid-loadflex"
ACK = {"message": {"ack": {"status": "ACK"}}}


def keys(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(["keys", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def public_key_of(path: Path) -> str:
    return KeyPair.from_private_key("x", "y", load_key_file(path)).public_key


# ---- keys new / show ----------------------------------------------------------------------------------------------

def test_keys_new_writes_a_file_only_its_owner_reads_that_key_file_reads_back(capsys: Capture, tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    code, out, err = keys(capsys, "new", "--out", str(path))
    assert code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("# deg-conformance: the Ed25519 private key")
    printed = json.loads(out)
    assert printed["signing_public_key"] == public_key_of(path)
    assert load_key_file(path) not in out + err  # the private key never reaches a terminal
    assert f"wrote the private key to {path} (mode 0600)" in err


def test_keys_new_prints_the_entry_in_both_shapes(capsys: Capture, tmp_path: Path) -> None:
    code, out, _ = keys(capsys, "new", "--out", str(tmp_path / "k"), "--subscriber-id", "bap.example.com",
                        "--key-id", "k1", "--url", "https://bap.example.com/beckn", "--type", "BAP", "--domain",
                        "deg:flexibility", "--city", "std:080")
    assert code == 0
    printed = json.loads(out)
    public = printed["signing_public_key"]
    subscribe = printed["beckn_subscribe"]
    assert parse_timestamp(subscribe.pop("valid_from")) < parse_timestamp(subscribe.pop("valid_until"))
    assert subscribe == {"subscriber_id": "bap.example.com", "url": "https://bap.example.com/beckn", "type": "BAP",
                         "domain": "deg:flexibility", "key_id": "k1", "signing_public_key": public,
                         "location": {"city": {"code": "std:080"}}}
    assert printed["dedi_details"] == {"subscriber_id": "bap.example.com", "url": "https://bap.example.com/beckn",
                                       "type": "BAP", "domain": "deg:flexibility", "signing_public_key": public}


def test_keys_new_without_a_url_says_the_entry_needs_one(capsys: Capture, tmp_path: Path) -> None:
    code, out, err = keys(capsys, "new", "--out", str(tmp_path / "k"))
    printed = json.loads(out)
    assert code == 0 and printed["beckn_subscribe"]["url"] is None and printed["dedi_details"]["url"] is None
    assert "location" not in printed["beckn_subscribe"]
    assert "after adding the subscriber URL (--url)" in err


def test_keys_new_refuses_to_overwrite_a_key_file_unless_forced(capsys: Capture, tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    assert keys(capsys, "new", "--out", str(path))[0] == 0
    before = path.read_text()
    code, out, err = keys(capsys, "new", "--out", str(path))
    assert (code, out) == (2, "")
    assert err == f"deg-conformance: error: --out {path}: the file exists; pass --force to replace it (the key in " \
                  f"it is then lost)\n"
    assert path.read_text() == before
    code, out, _ = keys(capsys, "new", "--out", str(path), "--force")
    assert code == 0 and path.read_text() != before
    assert json.loads(out)["signing_public_key"] == public_key_of(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keys_new_forced_over_a_symlink_replaces_the_link_not_its_target(capsys: Capture, tmp_path: Path) -> None:
    target = tmp_path / "shared.txt"
    target.write_text("not yours\n")
    target.chmod(0o644)
    link = tmp_path / "me.key"
    link.symlink_to(target)
    assert keys(capsys, "new", "--out", str(link))[0] == 2
    assert keys(capsys, "new", "--out", str(link), "--force")[0] == 0
    assert target.read_text() == "not yours\n" and not link.is_symlink()
    assert stat.S_IMODE(link.stat().st_mode) == 0o600


def test_keys_new_into_a_missing_folder_is_a_one_line_error(capsys: Capture, tmp_path: Path) -> None:
    code, _, err = keys(capsys, "new", "--out", str(tmp_path / "nowhere" / "k"))
    assert code == 2 and err.startswith(f"deg-conformance: error: --out {tmp_path / 'nowhere' / 'k'}: cannot write")


def test_keys_new_needs_out(capsys: Capture) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["keys", "new"])
    assert exit.value.code == 2 and "--out" in capsys.readouterr().err


def test_keys_show_prints_what_new_printed(capsys: Capture, tmp_path: Path) -> None:
    path = tmp_path / "me.key"
    made = json.loads(keys(capsys, "new", "--out", str(path), "--url", "https://me.example.com")[1])
    code, out, _ = keys(capsys, "show", "--key-file", str(path), "--url", "https://me.example.com")
    shown = json.loads(out)
    assert code == 0
    for printed in (made, shown):
        del printed["beckn_subscribe"]["valid_from"], printed["beckn_subscribe"]["valid_until"]
    assert shown == made


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    ("# only a comment\n", "no key in the file"),
    ("not base64!\n", "the private key is not base64"),
    ("AAAA\n", "an Ed25519 private key has 32 or 64 bytes, not 3"),
])
def test_keys_show_of_an_unusable_key_file_is_a_one_line_error(capsys: Capture, tmp_path: Path,
                                                               content: str | None, message: str) -> None:
    path = tmp_path / "me.key"
    if content is not None:
        path.write_text(content)
    code, out, err = keys(capsys, "show", "--key-file", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"deg-conformance: error: --key-file {path}: ") and message in err and err.count("\n") == 1


# ---- keys subscribe -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    with start(NetworkConfig()) as net:
        yield net


def subscribe_args(registry: str, key_file: Path, subscriber_id: str = "newcomer.example.com") -> list[str]:
    return ["subscribe", "--registry", registry, "--key-file", str(key_file), "--subscriber-id", subscriber_id,
            "--key-id", "newcomer-key-1", "--url", "https://newcomer.example.com/beckn", "--type", "BAP",
            "--domain", "flexibility"]


def test_keys_subscribe_makes_the_network_accept_what_the_key_signs(capsys: Capture, tmp_path: Path,
                                                                   network: Network) -> None:
    path = tmp_path / "newcomer.key"
    assert keys(capsys, "new", "--out", str(path))[0] == 0
    key = KeyPair.from_private_key("newcomer.example.com", "newcomer-key-1", load_key_file(path))
    before = signed_search(network, key, BPP)
    assert before.status_code == 401 and before.json()["error"]["message"].startswith("SIG_KEY_UNKNOWN")

    code, out, err = keys(capsys, *subscribe_args(network.registry_url, path))
    assert code == 0
    assert json.loads(out) == {"status": "UNDER_SUBSCRIPTION"}
    assert f"{network.registry_url}/subscribe answered HTTP 200" in err
    entry = next(s for s in network.registry.subscribers if s.subscriber_id == "newcomer.example.com")
    assert (entry.key_id, entry.signing_public_key, entry.type) == ("newcomer-key-1", key.public_key, "BAP")
    assert signed_search(network, key, BPP).json() == ACK


def test_keys_subscribe_needs_every_part_of_the_entry(capsys: Capture, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit:
        main(["keys", "subscribe", "--registry", "http://r", "--key-file", str(tmp_path / "k")])
    assert exit.value.code == 2 and "--subscriber-id" in capsys.readouterr().err


def registry_stand_in(status: int, body: str, methods: list[str]) -> Starlette:
    async def reply(request: Request) -> Response:
        return PlainTextResponse(body, status_code=status)
    return Starlette(routes=[Route("/subscribe", reply, methods=methods)])


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "k"
    path.write_text(KeyPair.generate("a", "b").private_key + "\n")
    return path


@pytest.mark.parametrize("app, message", [
    (Starlette(), "/subscribe answered HTTP 404: this registry has no Beckn /subscribe endpoint (a DeDi registry is "
                  "written through its own publishing API): publish the entry"),
    (registry_stand_in(200, "{}", ["GET"]), "/subscribe answered HTTP 405: this registry has no Beckn /subscribe"),
    (registry_stand_in(500, "line one\nline two", ["POST"]),
     "/subscribe refused the entry: HTTP 500: line one line two\n"),
    (registry_stand_in(400, "x" * 1000, ["POST"]), "refused the entry: HTTP 400: " + "x" * 300 + "...\n"),
])
def test_keys_subscribe_to_a_registry_that_will_not_take_it_is_a_one_line_error(
        capsys: Capture, key_file: Path, app: Starlette, message: str) -> None:
    with serve(app) as url:
        code, out, err = keys(capsys, *subscribe_args(url, key_file))
    assert (code, out) == (2, "")
    assert message in err and err.count("\n") == 1


def test_keys_subscribe_to_a_registry_that_answers_text_prints_it(capsys: Capture, key_file: Path) -> None:
    with serve(registry_stand_in(201, "subscribed", ["POST"])) as url:
        code, out, _ = keys(capsys, *subscribe_args(url, key_file))
    assert (code, out) == (0, "subscribed\n")


def test_keys_subscribe_to_a_closed_port_is_a_set_up_error_naming_the_url(capsys: Capture, key_file: Path) -> None:
    url = closed_port_url()
    code, out, err = keys(capsys, *subscribe_args(url, key_file))
    assert (code, out) == (2, "")
    assert err.startswith(f"deg-conformance: error: cannot reach the registry at {url}/subscribe (ConnectError")
    assert "a set-up problem; check --registry and that the registry is up" in err


@pytest.mark.parametrize("registry", ["reg.example.com", "ftp://reg.example.com"])
def test_keys_subscribe_to_something_not_a_url_is_refused(capsys: Capture, key_file: Path, registry: str) -> None:
    code, _, err = keys(capsys, *subscribe_args(registry, key_file))
    assert code == 2 and f"--registry {registry!r} is not an http(s) URL" in err


def test_keys_subscribe_with_an_unreadable_key_file_sends_nothing(capsys: Capture, tmp_path: Path) -> None:
    code, _, err = keys(capsys, *subscribe_args(closed_port_url(), tmp_path / "missing"))
    assert code == 2 and "--key-file" in err and "cannot read" in err

"""A person at the reference BAP's controls, for passive-drive tests: reads each prompt and does it in the app.

It behaves as a user of a real BAP would: its app makes its own transaction id when it searches (the harness
learns it from the search), it takes the offer to go on with from the prompt and finds it in the catalogs its app
received, and it gets the order id from what its app was told on confirm. What its app sends is the use case's
request body for the action (fixtures/<use case>/requests/), filled in with what the app knows. The app is the
reference BAP's client endpoint, which refuses (409) what a careful app refuses.
"""
from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import httpx

from conformance import usecases
from conformance.messages import dig
from conformance.offers import views
from conformance.scenario import read_fixture, render

CHOSEN = re.compile(r"(?:program|charger) (\S+) of provider (\S+)")
"""A prompt naming the offer to go on with: `open the program X of provider Y`, `choose the charger X of provider Y`."""
NOT_ITS_OWN = re.compile(r"(status|cancel|start charging)\S* (?:of |for )?order (\S+)")
"""A prompt naming an order the app never confirmed: the status of, the cancellation of, charging for order X."""
ASKS = (  # the words of a prompt about the chosen offer's order -> (action, request body)
    (r"\bstart charging\b", "update", "update.json"),
    (r"\bstop charging\b", "update", "update-end-charging.json"),
    (r"\bbilling details\b", "init", "init.json"),
    (r"\bconfirm\b", "confirm", "confirm.json"),
    (r"\bstatus\b", "status", "status.json"),
    (r"\bsupport\b", "support", "support.json"),
    (r"\bcancel\b", "cancel", "cancel.json"),
    (r"\btrack\b", "track", "track.json"),
    (r"\brate\b", "rating", "rating.json"),
)


class Person:
    def __init__(self, app_url: Callable[[], str], use_case: str = usecases.DEFAULT) -> None:
        self.app_url = app_url
        """The app's client endpoint, known once the harness (and its reference BAP) runs."""
        self.requests = usecases.named(use_case).requests
        self.prompts: list[str] = []
        self.answers: list[int] = []
        """The HTTP status the app gave each action: 409 when it would not do it."""
        self.transaction_id: str | None = None
        self.chosen: dict[str, Any] = {}
        """What the app knows of the offer the person chose: provider_id, item_id, fulfillment_id, bpp_id, bpp_uri."""
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="person")

    def __call__(self, prompt: str) -> None:
        """The harness's notify: act a moment later, as a person would, without holding the harness up."""
        self.prompts.append(prompt)
        self._pool.submit(self._act, prompt)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _act(self, prompt: str) -> None:
        ask = prompt.split(": ", 1)[1]
        if ask.startswith("search"):
            self.transaction_id = None
            self._send("search", "search.json", {})
        elif m := CHOSEN.search(ask):
            self.chosen = self._offer(m.group(2), m.group(1))
            self._send(*(("select", "select.json") if "quote" in ask else ("init", "init.json")), self.chosen)
        elif m := NOT_ITS_OWN.search(ask):
            action, body = {"status": ("status", "status.json"), "cancel": ("cancel", "cancel.json"),
                            "start charging": ("update", "update.json")}[m.group(1)]
            self._send(action, body, {**self._offer(), "order_id": m.group(2)})
        else:
            action, body = next((action, body) for words, action, body in ASKS if re.search(words, ask))
            known = dict(self.chosen)
            if action not in ("init", "confirm"):  # about the order: the one the app was told of on confirm
                known["order_id"] = dig(self._received("on_confirm"), "message", "order", "id")
            self._send(action, body, known)

    def _send(self, action: str, body: str, known: dict[str, Any]) -> None:
        doc = render(read_fixture(self.requests / body), known)
        context = doc["context"]
        if self.transaction_id is not None:
            context["transaction_id"] = self.transaction_id
        answer = httpx.post(f"{self.app_url()}/{action}", json={"context": context, "message": doc["message"]},
                            trust_env=False, timeout=10)
        self.answers.append(answer.status_code)
        if self.transaction_id is None and answer.status_code == 200:
            self.transaction_id = answer.json()["context"]["transaction_id"]

    def _received(self, action: str, wait: float = 5.0) -> Any:
        """The first `action` callback the app got in this transaction."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            found = [m["body"] for m in self._inbox() if m["action"] == action]
            if found:
                return found[0]
            time.sleep(0.05)
        return None

    def _inbox(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.app_url()}/inbox", params={"transaction_id": self.transaction_id},
                              trust_env=False).json())

    def _offer(self, provider_id: str | None = None, item_id: str | None = None) -> dict[str, Any]:
        """What the app knows of an offer in the catalogs it received: the one named, else the first."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for m in self._inbox():
                for view in views(m["body"]) if m["action"] == "on_search" else []:
                    if provider_id is None or (view["provider"]["id"], view["item"]["id"]) == (provider_id, item_id):
                        return {"provider_id": view["provider"]["id"], "item_id": view["item"]["id"],
                                "fulfillment_id": view["fulfillment"].get("id"),
                                "bpp_id": view["context"]["bpp_id"], "bpp_uri": view["context"]["bpp_uri"]}
            time.sleep(0.05)
        raise AssertionError(f"the app never got a catalog with {item_id or 'an item'} of "
                             f"{provider_id or 'a provider'}")

"""A person at the reference BAP's controls, for passive-drive tests: reads each prompt and does it in the app.

It behaves as a user of a real BAP would: its app makes its own transaction id when it searches (the harness
learns it from the search), it takes the program to enrol in from the prompt and finds it in the catalogs its
app received, and it gets the order id from what its app was told on confirm. The app is the reference BAP's
client endpoint, which refuses (409) what a careful app refuses.
"""
from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import httpx

from conformance.messages import dig
from conformance.offers import views

LOCATION = {"country": {"code": "USA"}, "city": {"code": "NANP:628"}}


class Person:
    def __init__(self, app_url: Callable[[], str]) -> None:
        self.app_url = app_url
        """The app's client endpoint, known once the harness (and its reference BAP) runs."""
        self.prompts: list[str] = []
        self.answers: list[int] = []
        """The HTTP status the app gave each action: 409 when it would not do it."""
        self.transaction_id: str | None = None
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
            self._send("search", {"intent": {"descriptor": {"name": "demand flexibility"}}})
        elif m := re.search(r"program (\S+) of provider (\S+)", ask):
            self.order = self._order(m.group(2), m.group(1))
            self._send("init", {"order": self.order["order"]}, self.order["context"])
        elif "confirm" in ask:
            self._send("confirm", {"order": self.order["order"]}, self.order["context"])
        elif m := re.search(r"(status|cancel)\S* (?:of )?order (\S+)", ask):
            action = "status" if m.group(1) == "status" else "cancel"
            self._send(action, {"order_id": m.group(2)}, self._first_bpp())
        else:
            order_id = dig(self._received("on_confirm"), "message", "order", "id")
            if "status" in ask:
                self._send("status", {"order_id": order_id}, self.order["context"])
            elif "support" in ask:
                self._send("support", {"support": {"ref_id": order_id}}, self.order["context"])
            elif "cancel" in ask:
                self._send("cancel", {"order_id": order_id}, self.order["context"])

    def _send(self, action: str, message: dict[str, Any], context: dict[str, Any] | None = None) -> None:
        ctx = {"domain": "flexibility", "version": "1.1.0", "location": LOCATION, **(context or {})}
        if self.transaction_id is not None:
            ctx["transaction_id"] = self.transaction_id
        answer = httpx.post(f"{self.app_url()}/{action}", json={"context": ctx, "message": message},
                            trust_env=False, timeout=10)
        self.answers.append(answer.status_code)
        if self.transaction_id is None and answer.status_code == 200:
            self.transaction_id = answer.json()["context"]["transaction_id"]

    def _received(self, action: str, wait: float = 5.0) -> Any:
        """The first `action` callback the app got in this transaction."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            inbox = httpx.get(f"{self.app_url()}/inbox", params={"transaction_id": self.transaction_id},
                              trust_env=False).json()
            found = [m["body"] for m in inbox if m["action"] == action]
            if found:
                return found[0]
            time.sleep(0.05)
        return None

    def _order(self, provider_id: str, item_id: str) -> dict[str, Any]:
        """What the app puts in init and confirm for the program the person chose, from its catalogs."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            inbox = httpx.get(f"{self.app_url()}/inbox", params={"transaction_id": self.transaction_id},
                              trust_env=False).json()
            for m in inbox:
                for view in views(m["body"]) if m["action"] == "on_search" else []:
                    if (view["provider"]["id"], view["item"]["id"]) == (provider_id, item_id):
                        fulfillment = {"id": view["fulfillment"].get("id"), "type": "DIGITAL",
                                       "stops": [{"type": "END", "location": {"address": "der://meter/1"}}],
                                       "customer": {"person": {"name": "Test Person"}}}
                        return {"context": {k: view["context"][k] for k in ("bpp_id", "bpp_uri")},
                                "order": {"provider": {"id": provider_id}, "items": [{"id": item_id}],
                                          "fulfillments": [fulfillment]}}
            time.sleep(0.05)
        raise AssertionError(f"the app never got a catalog with {item_id} of {provider_id}")

    def _first_bpp(self) -> dict[str, Any]:
        on_search = self._received("on_search")
        return {k: dig(on_search, "context", k) for k in ("bpp_id", "bpp_uri")}

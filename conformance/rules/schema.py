"""Schema rules: the record is a JSON object, and the body matches the core schema of its action."""
from __future__ import annotations

from typing import Iterator

from conformance.findings import Severity, Violation
from conformance.messages import MAX_DEPTH, MAX_MESSAGE_BYTES, TOO_DEEP, Message, json_type
from conformance.rules.registry import ANSWERED, CAPTURE_ISSUES, CheckContext, has_core_errors, rule

CORE = "Beckn core 1.1.0, transaction API (POST /{action} request body schema)"


@rule("SCH_TOO_LARGE", group="schema", envelope=True,
      title="A message is at most the size the harness decodes",
      clause=f"deg-conformance input limit ({MAX_MESSAGE_BYTES // (1024 * 1024)} MiB per message)",
      must=f"be at most {MAX_MESSAGE_BYTES} bytes")
def too_large(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    if msg.size > MAX_MESSAGE_BYTES:
        yield Violation((), f"<= {MAX_MESSAGE_BYTES} bytes", f"{msg.size} bytes")


@rule("SCH_TOO_DEEP", group="schema", envelope=True,
      title="A message nests no deeper than the harness decodes",
      clause=f"deg-conformance input limit ({MAX_DEPTH} levels of nesting; Beckn messages stay under 15)",
      must=f"nest at most {MAX_DEPTH} levels deep")
def too_deep(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    if msg.decode_error == TOO_DEEP:
        yield Violation((), f"<= {MAX_DEPTH} levels", TOO_DEEP)


@rule("SCH_NOT_JSON", group="schema", envelope=True,
      title="A message body is well-formed JSON", clause="Beckn core 1.1.0: bodies are application/json",
      must="be well-formed JSON")
def not_json(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    if msg.decode_error is not None and msg.decode_error != TOO_DEEP:
        yield Violation((), "a JSON document", msg.decode_error)


@rule("SCH_NOT_OBJECT", group="schema", envelope=True,
      title="A message body is a JSON object", clause=CORE, must="be a JSON object with context and message")
def not_object(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    if (msg.decode_error is None and msg.capture_error is None and msg.size <= MAX_MESSAGE_BYTES
            and not isinstance(msg.body, dict)):
        yield Violation((), "object", json_type(msg.body))


CAPTURES = ("deg-conformance capture formats (JSON, JSON Lines plain or wrapped, HAR 1.2; README: Validating "
            "captured traffic)")


@rule("SCH_CAPTURE_RECORD", group="schema", envelope=True,
      title="A captured record holds a message: a Beckn message, a capture wrapper with a body, a HAR POST entry",
      clause=CAPTURES, must="hold a message the harness can read")
def capture_record(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    """An error: nothing in the record could be checked, and a verdict must not pass over it unseen."""
    if msg.capture_error is not None:
        yield msg.capture_error


@rule("SCH_CAPTURE_FIELD", group="schema", severity=Severity.WARNING,
      title="What a capture records beside a message (capture time, direction, URL, response) is usable",
      clause=CAPTURES, must="be usable, in the capture's record", when=CAPTURE_ISSUES)
def capture_field(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    """A warning: the message itself is checked, and the capture, not the participant, recorded the field
    wrongly; the finding says which rules went without it. Only on messages that are checked: a record that
    is not has its own finding, and its capture fields serve no rule."""
    yield from msg.capture_issues


def _core_rule(rule_id: str, keyword: str, title: str, must: str) -> None:
    def check(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
        for err in ctx.outcome.core:
            if err.keyword == keyword:
                yield Violation(err.path, err.expected, err.found, err.must)

    rule(rule_id, group="schema", title=title, clause=CORE, must=must, when=has_core_errors)(check)


_core_rule("SCH_REQUIRED", "required", "Fields the core schema requires are present", "be present")
_core_rule("SCH_TYPE", "type", "Every field has the JSON type the core schema gives it", "have the schema's type")
_core_rule("SCH_ENUM", "enum", "Enumerated fields hold one of the core schema's values", "be one of the allowed values")
_core_rule("SCH_PATTERN", "pattern", "Patterned fields (gps, decimal values) match the core pattern", "match the pattern")


@rule("SCH_CONSTRAINT", group="schema",
      title="Every other core schema constraint holds (minimum, maximum, ...)", clause=CORE, when=has_core_errors,
      must="satisfy the core schema")
def other_constraints(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    for err in ctx.outcome.core:
        if err.keyword not in {"required", "type", "enum", "pattern"}:
            yield Violation(err.path, err.expected, err.found, err.must)


@rule("SCH_ACK_RESPONSE", group="schema",
      title="The synchronous response is a well-formed ACK/NACK",
      clause="Beckn core 1.1.0, transaction API: default response {message: {ack: {status: ACK|NACK}}, error}",
      must="be a well-formed ACK/NACK response", when=ANSWERED)
def ack_response(msg: Message, ctx: CheckContext) -> Iterator[Violation]:
    for err in ctx.validation.ack_errors(msg):
        # The path is into the response body, not the request: the predicate says so.
        yield Violation(err.path, err.expected, err.found, f"{err.must}, in the synchronous ACK/NACK response")

"""What a person is told about a printer or a job, from what the service stores: whether
the printer is online, its state and why, a job's state and its cause, in words; and the
same as PrintNode names it, with its timestamps."""
import datetime
import json

from tools.printservice.store import state_cause

# An agent without push polls every minute by default: two missed polls and some slack.
CONTACT_WINDOW_MS = 150 * 1000

CAUSE_WORDS = {
    "INPUT_TRAY": "paper out", "MARKER": "ribbon or ink", "MEDIA_PATH": "paper jam",
    "MEDIA_SIZE": "wrong media size", "MEDIA_TYPE": "wrong media", "DOWNLOAD_FAILURE": "download failed",
    "INVALID_TICKET": "invalid ticket", "PRINT_FAILURE": "print failure", "CANCELLED": "cancelled",
    "PAUSED": "paused", "PRINTER_DELETED": "printer deleted", "EXPIRED": "expired: not printed in time",
    "OTHER": "other",
}


def online(printer, now):
    """(online, how): the broker's retained status says online; its last will, sent when
    the session dies, says offline unless the printer was in touch over HTTP since; without
    push, the printer was in touch over HTTP lately."""
    if printer["presence"] == "online":
        return True, "push"
    if printer["presence"] == "offline" and printer["presence_ms"] >= printer["accessed_ms"]:
        return False, "offline"
    if now - printer["accessed_ms"] < CONTACT_WINDOW_MS:
        return True, "polling"
    return False, "offline"


def printer_state(semantic_state):
    """(IDLE | PROCESSING | STOPPED, the reasons as words) from a CDS document (JSON text
    or already parsed)."""
    try:
        doc = json.loads(semantic_state) if isinstance(semantic_state, str) else semantic_state
        printer = doc["printer"]
    except (ValueError, KeyError, TypeError):
        return "UNKNOWN", []
    reasons = []
    for item in printer.get("input_tray_state", {}).get("item", []):
        if item.get("state") == "EMPTY":
            reasons.append("paper out")
    for item in printer.get("cover_state", {}).get("item", []):
        if item.get("state") == "OPEN":
            reasons.append("head open")
    for item in printer.get("marker_state", {}).get("item", []):
        if item.get("state") in ("EXHAUSTED", "OUT"):
            reasons.append("ribbon out")
    for item in printer.get("vendor_state", {}).get("item", []):
        if item.get("description"):
            reasons.append(str(item["description"])[:200])
    return str(printer.get("state", "UNKNOWN")), reasons


def job_state(state_json):
    """(QUEUED | IN_PROGRESS | STOPPED | DONE | ABORTED, the cause in words or "") from a
    job's semantic state (JSON text or already parsed)."""
    state = (json.loads(state_json) if isinstance(state_json, str) else state_json)["state"]
    return state["type"], cause_words(state_cause(state))


def cause_words(code):
    """A cause code in words ("" for none)."""
    return "" if code is None else CAUSE_WORDS.get(code, code.lower().replace("_", " "))


def copies(ticket_json):
    try:
        return int(json.loads(ticket_json)["print"]["copies"]["copies"])
    except (ValueError, KeyError, TypeError):
        return 1


# our job model -> PrintNode's state names (a QUEUED job a printer has fetched is sent_to_client)
PRINTNODE_STATES = {"QUEUED": "new", "SENT": "sent_to_client", "IN_PROGRESS": "in_progress",
                    "STOPPED": "in_progress", "DONE": "done", "ABORTED": "error"}
PRINTNODE_ABORTED = {"CANCELLED": "deleted", "EXPIRED": "expired", "PRINTER_DELETED": "deleted"}


def printnode_state(what, cause):
    """PrintNode's name for a job event or state (QUEUED, SENT, ... with its cause)."""
    if what == "ABORTED":
        return PRINTNODE_ABORTED.get(cause, "error")
    return PRINTNODE_STATES[what]


def iso(ms):
    """Milliseconds since the epoch as ISO 8601 UTC with milliseconds (None stays None)."""
    if ms is None:
        return None
    t = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)

"""What a person is told about a printer or a job, from what the service stores: whether
the printer is online, its state and why, a job's state and its cause, in words."""
import json

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
    for key in ("user_action_cause", "device_state_cause", "device_action_cause", "service_action_cause"):
        cause = state.get(key)
        if isinstance(cause, dict):
            code = cause.get("action_code") or cause.get("error_code") or "OTHER"
            return state["type"], CAUSE_WORDS.get(code, code.lower().replace("_", " "))
    return state["type"], ""


def copies(ticket_json):
    try:
        return int(json.loads(ticket_json)["print"]["copies"]["copies"])
    except (ValueError, KeyError, TypeError):
        return 1

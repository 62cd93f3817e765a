# The printer monitor: the one owner of /update. It turns the driver's printer state
# into a CDS document (reference §7) and sends it only when it changed.
import json

from firmware.printers.base import HEAD_OPEN, NOT_ANSWERING, PAPER_OUT, PAUSED, READY


def cds(state, printing):
    printer = {"state": "STOPPED"}  # type: dict
    tray = "OK"
    cover = "OK"
    if state == READY:
        printer["state"] = "PROCESSING" if printing else "IDLE"
    elif state == PAPER_OUT:
        tray = "EMPTY"
    elif state == HEAD_OPEN:
        cover = "OPEN"
    elif state == PAUSED:
        printer["vendor_state"] = {"item": [{"state": "INFO", "description": "Paused"}]}
    elif state == NOT_ANSWERING:
        printer["vendor_state"] = {"item": [{"state": "ERROR", "description": "Printer not responding"}]}
    printer["input_tray_state"] = {"item": [{"vendor_id": "roll", "state": tray}]}
    printer["cover_state"] = {"item": [{"vendor_id": "head", "state": cover}]}
    return {"version": "1.0", "printer": printer}


class Monitor:
    def __init__(self, api, log):
        self._api = api
        self._log = log
        self.printer_id = None
        self.state = "not yet asked"  # the printer's latest status, for the console
        self._sent = None  # (state, printing) last delivered

    def forget(self):
        """Send the state again next time (after a reconnect or a new registration)."""
        self._sent = None

    def report(self, state, printing=False):
        self.state = state + (" (printing)" if printing else "")
        key = (state, printing)
        if key == self._sent or self.printer_id is None:
            return
        try:
            self._api.update(self.printer_id, [("semantic_state", json.dumps(cds(state, printing)),
                                                "application/json")])
            self._sent = key
            self._log.info("printer state: %s%s", state, " (printing)" if printing else "")
        except Exception as e:  # best effort: the next change or cycle tries again
            self._log.warn("could not report printer state: %s", e)

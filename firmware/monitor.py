# The printer monitor: the one owner of /update. It turns the driver's printer state
# into a CDS document (reference §7) and sends it only when it changed.
import json

from firmware.printers.base import HEAD_OPEN, NOT_ANSWERING, PAPER_OUT, PAUSED, READY


UNCONFIRMED = {"state": "INFO", "description": "Job completion: sent, not confirmed "
               "(the printer answers DLE EOT status but not GS r)"}


def cds(state, printing, confirmed=True):
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
    if not confirmed:
        printer.setdefault("vendor_state", {"item": []})["item"].append(UNCONFIRMED)
    printer["input_tray_state"] = {"item": [{"vendor_id": "roll", "state": tray}]}
    printer["cover_state"] = {"item": [{"vendor_id": "head", "state": cover}]}
    return {"version": "1.0", "printer": printer}


def led_pattern(state, printing):
    if state != READY:
        return "attention"
    return "printing" if printing else "online"


class Monitor:
    """status: where the console reads the printer's latest state (console.Status)."""

    def __init__(self, api, log, driver, indicator, status):
        self._api = api
        self._driver = driver
        self._indicator = indicator
        self._status = status
        self._pattern = "online"
        self._log = log
        self.printer_id = None
        self._sent = None  # (state, printing) last delivered

    def forget(self):
        """Send the state again next time (after a reconnect or a new registration)."""
        self._sent = None

    def show_online(self):
        """The service answered: the LED shows the printer's state again."""
        self._indicator.show(self._pattern)

    def report(self, state, printing=False):
        self._status.printer = state + (" (printing)" if printing else "")
        self._pattern = led_pattern(state, printing)
        self._indicator.show(self._pattern)
        confirmed = self._driver.confirms_completion
        key = (state, printing, confirmed)
        if key == self._sent or self.printer_id is None:
            return
        try:
            self._api.update(self.printer_id, [("semantic_state", json.dumps(cds(state, printing, confirmed)),
                                                "application/json")])
            self._sent = key
            self._log.info("printer state: %s%s", state, " (printing)" if printing else "")
        except Exception as e:  # best effort: the next change or cycle tries again
            self._log.warn("could not report printer state: %s", e)

# Zebra ZPL: ^XA..^XZ formats, ~HS host status, ~JX to drop a cut-off partial format.
from firmware.printers import base

HS = b"~HS"
CANCEL_PARTIAL = b"~JX"


def _three_lines(reply):
    return reply.count(b"\x03") >= 3


def parse_host_status(reply):
    """(state, formats still to print) from a ~HS reply (three STX..ETX lines);
    (NOT_ANSWERING, None) if it is malformed."""
    lines = []  # type: list
    start = 0
    while len(lines) < 3:
        s = reply.find(b"\x02", start)
        e = reply.find(b"\x03", s + 1) if s >= 0 else -1
        if s < 0 or e < 0:
            return base.NOT_ANSWERING, None
        lines.append(reply[s + 1:e].split(b","))
        start = e + 1
    one, two = lines[0], lines[1]
    if len(one) < 12 or len(two) < 11 or not one[4].isdigit():
        return base.NOT_ANSWERING, None
    left = int(one[4]) + (1 if one[7] == b"1" else 0)
    if one[1] == b"1":
        return base.PAPER_OUT, left
    if two[2] == b"1":
        return base.HEAD_OPEN, left
    if one[2] == b"1":
        return base.PAUSED, left
    return base.READY, left


class ZplDriver(base.Driver):
    language = "zpl"
    content_type = "application/x-zpl"
    default_name = "Label printer"
    page_mark = b"^XZ"

    def cut_off(self):
        self.write(CANCEL_PARTIAL)  # a cut-off format would swallow the start of the next job

    def progress(self):
        reply = self._query(HS, _three_lines)
        if reply is None:
            return base.NOT_ANSWERING, None
        return parse_host_status(reply)

    def status(self):
        return self.progress()[0]

    def test_page(self, version):
        return ("^XA^CI28^FO40,40^A0N,48,48^FDTest print^FS"
                "^FO40,110^A0N,30,30^FDcloudprint-agent " + _field(version) + "^FS"
                "^FO40,160^A0N,30,30^FDZPL, printer OK^FS^XZ").encode()

    def claim_ticket(self, token, invite_url, complete_url):
        return ("^XA^CI28^FH_"
                "^FO40,40^A0N,48,48^FDClaim this printer^FS"
                "^FO40,110^A0N,40,40^FDCode: " + _field(token) + "^FS"
                "^FO40,170^A0N,24,24^FD" + _field(invite_url) + "^FS"
                "^FO40,220^BQN,2,6^FDQA," + _field(complete_url) + "^FS"
                "^XZ").encode()


def _field(text):
    # With ^FH_ these escapes keep data from ending or redirecting the field.
    text = base.ascii_only(text)
    return text.replace("_", "_5F").replace("^", "_5E").replace("~", "_7E")

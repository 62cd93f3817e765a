# The status LED: one blink pattern per state, so a person sees at a glance what the
# agent is doing. A pattern is 8 slots of SLOT_MS (a 2 s cycle), bit 7 first; tick()
# runs with every clock beat (clock.py) and switches the pin only when the slot changes.
SLOT_MS = 250

PATTERNS = {
    "claim": 0b11110000,      # slow blink: waiting to be claimed (the ticket is out)
    "online": 0b11111111,     # steady: registered, service reachable, printer ready
    "printing": 0b10101010,   # fast blink: a job is printing
    "attention": 0b10100000,  # double blink: the printer needs a person (paper, head)
    "offline": 0b10000000,    # short blip: no network or the service is unreachable
    "safe": 0b10101000,       # triple blink: safe mode or not configured: use the console
    "off": 0,
}


class Indicator:
    def __init__(self, pin_write=None):
        self._write = pin_write  # pin_write(0 or 1), None without an LED
        self.pattern = "off"
        self._bits = 0
        self._lit = None

    def show(self, name):
        self.pattern = name
        self._bits = PATTERNS[name]

    def tick(self, now_ms):
        if self._write is None:
            return
        slot = (now_ms // SLOT_MS) % 8
        lit = (self._bits >> (7 - slot)) & 1
        if lit != self._lit:
            self._lit = lit
            self._write(lit)

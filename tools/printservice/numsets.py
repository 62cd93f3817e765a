"""PrintNode's sets of ids: "11", "1-5", "5-" (5 and up), "-5" (up to 5), "-" (all),
sections joined by commas ("1,3-"); no whitespace. Parsed into [(low or None, high or None)]."""
import re

SET_MAX_CHARS = 1000
SET_MAX_SECTIONS = 100
ID_DIGITS = 15
_SECTION = re.compile(r"(\d{1,%d})?(-)?(\d{1,%d})?" % (ID_DIGITS, ID_DIGITS), re.ASCII)


class BadSet(ValueError):
    pass


def parse(text):
    """The ranges of a set; BadSet with the reason when it is not one."""
    if not text or len(text) > SET_MAX_CHARS:
        raise BadSet("a set has 1 to %d characters" % SET_MAX_CHARS)
    sections = text.split(",")
    if len(sections) > SET_MAX_SECTIONS:
        raise BadSet("a set has at most %d sections" % SET_MAX_SECTIONS)
    out = []
    for section in sections:
        m = _SECTION.fullmatch(section)
        if not section or not m:
            raise BadSet("%r is not a set of ids (like 1,3,5-9 with no spaces)" % text[:80])
        low, dash, high = m.groups()
        low, high = (int(low) if low else None), (int(high) if high else None)
        if not dash:
            if low is None or high is not None:  # "12" alone matches as low
                raise BadSet("%r is not a set of ids" % text[:80])
            high = low
        if any(v is not None and v < 1 for v in (low, high)):
            raise BadSet("ids are positive integers")
        out.append((low, high))
    return out

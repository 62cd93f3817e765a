"""Pictures of ZPL labels and ESC/POS receipts, drawn from the bytes a printer is sent: the
printer simulator's previews of what it printed and the service console's job previews.

Renders the subset our jobs and claim tickets use, and the common commands of real
label and receipt jobs: ZPL ^FO ^A0 ^FD/^FS ^FH ^BC (Code 128) ^BQ (QR) ^GB ^GFA; ESC/POS
text, ESC a (alignment), ESC E (bold), GS ( k (QR), GS k (Code 128), GS v 0 (raster), GS V (cut).
Drawing is Pillow's; QR matrices come from segno, Code 128 modules from python-barcode."""
import binascii
import io
import os
import re

import barcode
import segno
from PIL import Image, ImageDraw, ImageFont

LABEL_SIZE = (812, 1218)  # 4 x 6 in at 203 dpi
RECEIPT_WIDTH = 576  # 80 mm paper at 203 dpi
COLUMNS = 48  # Font A (12 x 24 dots) across those 576 dots; longer lines wrap, as on paper
CELL = RECEIPT_WIDTH // COLUMNS
LINE_PITCH = 30  # dots: ESC/POS's default line spacing
WHITE, BLACK = 255, 0


MONO = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"  # Debian fonts-dejavu-core


def _font(size, mono=False):
    # Receipt printers print a fixed-pitch font; use one where the system has it.
    if mono and os.path.exists(MONO):
        return ImageFont.truetype(MONO, max(8, size))
    return ImageFont.load_default(size=max(8, size))


def _draw_qr(draw, x, y, data, module):
    for r, row in enumerate(segno.make(data, error="l", micro=False).matrix):
        for c, dark in enumerate(row):
            if dark:
                draw.rectangle([x + c * module, y + r * module,
                                x + (c + 1) * module - 1, y + (r + 1) * module - 1], fill=BLACK)
    return (len(segno.make(data, error="l", micro=False).matrix)) * module


def _draw_code128(draw, x, y, data, height, module=2):
    modules = barcode.get("code128", data).build()[0]
    for i, bit in enumerate(modules):
        if bit == "1":
            draw.rectangle([x + i * module, y, x + (i + 1) * module - 1, y + height], fill=BLACK)
    return len(modules) * module


def render_zpl(label):
    img = Image.new("L", LABEL_SIZE, WHITE)
    draw = ImageDraw.Draw(img)
    text = label.decode("latin-1")
    x = y = 0
    font_h = 30
    field = None  # ("text" | "qr" | "code128", params)
    hex_indicator = None
    for cmd in re.split(r"(?=\^)", text):
        if len(cmd) < 3 or cmd[0] != "^":
            continue
        name, args = cmd[1:3].upper(), cmd[3:]
        if name == "FO":
            parts = (args.split(",") + ["0", "0"])[:2]
            x, y = int(parts[0] or 0), int(parts[1] or 0)
        elif name == "A0" or (name[0] == "A" and name != "A@"):
            parts = args.lstrip("NRIB,").split(",")
            if parts and parts[0].isdigit():
                font_h = int(parts[0])
        elif name == "FH":
            hex_indicator = args[:1] or "_"
        elif name == "BC":
            parts = (args.split(",") + [""] * 3)[:3]
            field = ("code128", int(parts[1]) if parts[1].isdigit() else 100)
        elif name == "BQ":
            parts = (args.split(",") + [""] * 3)[:3]
            field = ("qr", int(parts[2]) if parts[2].isdigit() else 3)
        elif name == "GB":
            w, h, t = ([int(v) if v.isdigit() else 1 for v in (args.split(",") + ["1"] * 3)[:3]])
            draw.rectangle([x, y, x + max(w, t), y + max(h, t)], outline=BLACK, width=max(1, t))
        elif name == "GF":
            _graphic(img, x, y, args)
        elif name == "FD":
            data = args
            if hex_indicator:
                data = re.sub(re.escape(hex_indicator) + r"([0-9A-Fa-f]{2})",
                              lambda m: chr(int(m.group(1), 16)), data)
            kind = field[0] if field else "text"
            if kind == "qr":
                _draw_qr(draw, x, y, data[3:] if data[:3].upper() in ("QA,", "HA,", "MA,", "LA,") else data,
                         field[1] * 2)
            elif kind == "code128":
                _draw_code128(draw, x, y, data, field[1])
                draw.text((x, y + field[1] + 4), data, fill=BLACK, font=_font(24))
            else:
                draw.text((x, y), data, fill=BLACK, font=_font(font_h))
        elif name == "FS":
            field = None
        elif name == "XZ":
            hex_indicator = None
    return img


def _graphic(img, x, y, args):
    parts = args.split(",", 4)
    if len(parts) < 5 or not parts[3].isdigit():
        return
    row_bytes = int(parts[3])
    try:
        data = binascii.unhexlify(re.sub(r"[^0-9A-Fa-f]", "", parts[4])[: 2 * (len(parts[4]) // 2)])
    except binascii.Error:
        return
    rows = len(data) // row_bytes if row_bytes else 0
    if not rows:
        return
    bitmap = Image.frombytes("1", (row_bytes * 8, rows), data[:rows * row_bytes])
    img.paste(0, (x, y), bitmap.crop((0, 0, min(bitmap.width, img.width - x), bitmap.height)))


def render_escpos(receipt):
    lines = []  # (kind, align, payload)
    align = 0
    text = bytearray()
    qr = b""
    i = 0

    def flush():
        if text:
            lines.append(("text", align, text.decode("latin-1")))
            text.clear()
    while i < len(receipt):
        b = receipt[i]
        if b == 0x0A:
            flush() if text else lines.append(("text", align, ""))
            i += 1
        elif b == 0x1B and i + 1 < len(receipt):
            op = receipt[i + 1]
            if op == 0x61 and i + 2 < len(receipt):  # ESC a n
                flush()
                align = receipt[i + 2] % 48
                i += 3
            elif op in (0x45, 0x21, 0x2D, 0x4D, 0x64, 0x4A, 0x74, 0x47):  # one-parameter commands
                if op in (0x64, 0x4A):  # feed n lines / n dots
                    flush()
                    lines.append(("feed", align, receipt[i + 2] if i + 2 < len(receipt) else 1))
                i += 3
            else:  # ESC @ and other two-byte commands
                i += 2
        elif b == 0x1D and i + 1 < len(receipt):
            op = receipt[i + 1]
            if op == 0x28 and i + 4 < len(receipt):  # GS ( k pL pH cn fn ...
                size = receipt[i + 3] | receipt[i + 4] << 8
                body = receipt[i + 5:i + 5 + size]
                if body[:2] == b"1P":
                    qr = bytes(body[3:])
                elif body[:2] == b"1Q" and qr:
                    flush()
                    lines.append(("qr", align, qr.decode("latin-1")))
                i += 5 + size
            elif op == 0x6B and i + 3 < len(receipt) and receipt[i + 2] >= 65:  # GS k m n data
                n = receipt[i + 3]
                data = receipt[i + 4:i + 4 + n]
                flush()
                lines.append(("code128", align, data.lstrip(b"{B").decode("latin-1")))
                i += 4 + n
            elif op == 0x76 and i + 7 < len(receipt) and receipt[i + 2] == 0x30:  # GS v 0 m xL xH yL yH data
                row_bytes, rows = receipt[i + 4] | receipt[i + 5] << 8, receipt[i + 6] | receipt[i + 7] << 8
                data = bytes(receipt[i + 8:i + 8 + row_bytes * rows])
                flush()
                if row_bytes and len(data) == row_bytes * rows:
                    lines.append(("raster", align, (row_bytes, rows, data)))
                i += 8 + row_bytes * rows
            elif op == 0x56:  # GS V: the cut ends the receipt
                break
            else:
                i += 3
        elif b >= 0x20:
            text.append(b)
            i += 1
        else:
            i += 1
    flush()
    return _layout(lines)


def _text_blocks(align, text):
    """One block per printed line: COLUMNS characters of CELL dots each, then a wrap."""
    font = _font(20, mono=True)  # DejaVu Sans Mono at 20 px advances about 12 px (CELL)

    def paint(d, x, y, p):
        for i, ch in enumerate(p):
            d.text((x + i * CELL, y), ch, fill=BLACK, font=font)
    rows = [text[i:i + COLUMNS] for i in range(0, len(text), COLUMNS)] or [""]
    return [(align, LINE_PITCH, lambda d, x, y, p=row: paint(d, x, y, p), len(row) * CELL) for row in rows]


def _layout(lines):
    blocks = []
    for kind, align, payload in lines:
        if kind == "text":
            blocks += _text_blocks(align, payload)
        elif kind == "feed":
            blocks.append((align, 10 * min(payload, 10), None, 0))
        elif kind == "qr":
            side = len(segno.make(payload, error="l", micro=False).matrix) * 6
            blocks.append((align, side + 10, lambda d, x, y, p=payload: _draw_qr(d, x, y, p, 6), side))
        elif kind == "code128":
            width = len(barcode.get("code128", payload).build()[0]) * 2
            blocks.append((align, 110, lambda d, x, y, p=payload: _draw_code128(d, x, y, p, 100), width))
        elif kind == "raster":  # set bits are black dots; bands follow each other with no gap
            row_bytes, rows, data = payload
            bitmap = Image.frombytes("1", (row_bytes * 8, rows), data)
            blocks.append((align, rows, lambda d, x, y, b=bitmap: d.bitmap((x, y), b, fill=BLACK), bitmap.width))
    height = 20 + sum(b[1] for b in blocks) + 40
    img = Image.new("L", (RECEIPT_WIDTH, height), WHITE)
    draw = ImageDraw.Draw(img)
    y = 20
    for align, h, paint, width in blocks:
        x = {0: 0, 1: (RECEIPT_WIDTH - width) // 2, 2: RECEIPT_WIDTH - width}.get(align, 0)
        if paint:
            paint(draw, max(0, x), y)
        y += h
    draw.line([0, height - 2, RECEIPT_WIDTH, height - 2], fill=BLACK, width=1)  # the cut
    return img


def render(document, language):
    return render_zpl(document) if language == "zpl" else render_escpos(document)


ESCPOS_CUT = re.compile(rb"\x1dV(?:[AB].|[\x00\x01\x30\x31])", re.DOTALL)  # GS V m [n]


def documents(data, language):
    """The labels (^XA ... ^XZ) or receipts (up to each cut) in one job's bytes."""
    if language == "zpl":
        return [d[d.index(b"^XA"):] + b"^XZ" for d in data.split(b"^XZ") if b"^XA" in d]
    out, start = [], 0
    for m in ESCPOS_CUT.finditer(data):
        out.append(data[start:m.end()])
        start = m.end()
    if data[start:].strip():
        out.append(data[start:])
    return out


def sheet(data, language, most=4, gap=16):
    """A PNG of the first `most` labels or receipts in data, side by side (None: nothing
    printable in it)."""
    pages = [render(d, language) for d in documents(data, language)[:most]]
    if not pages:
        return None
    img = Image.new("L", (sum(p.width for p in pages) + gap * (len(pages) - 1),
                          max(p.height for p in pages)), 200)
    x = 0
    for p in pages:
        img.paste(p, (x, 0))
        x += p.width + gap
    out = io.BytesIO()
    img.save(out, "PNG", optimize=True)
    return out.getvalue()

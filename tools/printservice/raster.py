"""PDF and image jobs for label and receipt printers: each page drawn to the printer's dots
(its media width and dpi from its CDD) and sent as the printer's own graphics, one label
or receipt per page: ZPL ^GFA, or ESC/POS raster (GS v 0) followed by a cut.

Pages are drawn by PDFium (pypdfium2) and Pillow, in black and white by a plain threshold:
barcodes stay sharp. A landscape page for portrait labels is turned a quarter clockwise. PDFium is
not thread-safe, so one page is drawn at a time."""
import io
import json
import re
import threading

from PIL import Image, ImageOps

ZPL, ESCPOS = "application/x-zpl", "application/x-escpos"
DRAWABLE = ("application/pdf", "image/png", "image/jpeg")
PAGES_MAX = 50
SOURCE_MAX = 64 * 1024 * 1024  # bytes of a PDF or image to draw
PIXELS_MAX = 40 * 1000 * 1000  # of an image before it is scaled
ROWS_MAX = 16000  # dots down one page: 2 m of receipt at 203 dpi
BAND_ROWS = 128  # ESC/POS rows per GS v 0 command: small enough for any printer's buffer
_pdfium = threading.Lock()


class CannotDraw(ValueError):
    """The file is no PDF or image the service can draw, or breaks a limit: why, in words."""


def sniff(head):
    """The type of a file from its first bytes when it is one that can be drawn, else None."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None


def printer_language(content_types):
    """The printer's graphics language from its content types: ZPL, ESCPOS or None."""
    return next((t for t in (ZPL, ESCPOS) if t in content_types), None)


def media(capabilities_json):
    """(width in dots, height in dots or None for a roll, dpi) of the printer's default
    media in its CDD; the imageable area when the CDD gives one."""
    try:
        cdd = json.loads(capabilities_json)["printer"]
    except (ValueError, KeyError, TypeError):
        cdd = {}
    dpis = [o for o in cdd.get("dpi", {}).get("option", []) if isinstance(o, dict)]
    dpi = next((o for o in dpis if o.get("is_default")), dpis[0] if dpis else {}).get("horizontal_dpi") or 203
    options = [o for o in cdd.get("media_size", {}).get("option", []) if isinstance(o, dict)]
    option = next((o for o in options if o.get("is_default")), options[0] if options else {})
    width = option.get("width_microns") or 101600
    if "imageable_area_right_microns" in option:
        width = option["imageable_area_right_microns"] - option.get("imageable_area_left_microns", 0)
    height = None if option.get("is_continuous_feed") else option.get("height_microns")
    dots = lambda microns: int(microns * dpi // 25400)
    return dots(width), (dots(height) if height else None), int(dpi)


def pages(data, ctype, width, height=None):
    """The pages of a PDF or image as black-and-white Pillow images ("1") width dots wide
    (and at most height dots tall: scaled to fit a label); CannotDraw when it cannot be."""
    if len(data) > SOURCE_MAX:
        raise CannotDraw("the file is over %d bytes" % SOURCE_MAX)
    drawn = _pdf_pages(data, width, height) if ctype == "application/pdf" else [_image(data, width, height)]
    return [_black_and_white(p) for p in drawn]


def _fit(w, h, width, height):
    """The scale that fits w x h into width (and height); a landscape page for portrait
    labels is turned first: (scale, turned)."""
    turn = bool(height) and w > h and height > width
    if turn:
        w, h = h, w
    scale = width / w
    if height:
        scale = min(scale, height / h)
    if h * scale > ROWS_MAX:
        raise CannotDraw("a page is over %d dots long at this printer's width" % ROWS_MAX)
    return scale, turn


def _pdf_pages(data, width, height):
    import pypdfium2 as pdfium  # loaded when a PDF is first drawn
    with _pdfium:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as e:
            raise CannotDraw("not a PDF that can be read: %s" % e)
        try:
            if len(pdf) == 0 or len(pdf) > PAGES_MAX:
                raise CannotDraw("a PDF of 1 to %d pages, not %d" % (PAGES_MAX, len(pdf)))
            out = []
            for i in range(len(pdf)):
                page = pdf[i]
                try:
                    w, h = page.get_size()
                    scale, turn = _fit(w, h, width, height)
                    image = page.render(scale=scale, rotation=90 if turn else 0, grayscale=True,
                                        fill_color=(255, 255, 255, 255)).to_pil()
                finally:
                    page.close()
                out.append(image)
            return out
        finally:
            pdf.close()


def _image(data, width, height):
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > PIXELS_MAX:
            raise CannotDraw("an image of at most %d pixels" % PIXELS_MAX)
        image.load()
    except (OSError, Image.DecompressionBombError, SyntaxError) as e:
        raise CannotDraw("not an image that can be read: %s" % e)
    if image.mode in ("RGBA", "LA", "P"):  # transparent is white paper, not black
        image = image.convert("RGBA")
        paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, image)
    scale, turn = _fit(image.width, image.height, width, height)
    if turn:
        image = image.rotate(-90, expand=True)  # a quarter clockwise, as PDFium turns a page
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.convert("L").resize(size, Image.Resampling.LANCZOS)


def _black_and_white(gray):
    """A "1" image whose set bits are the dots to print (dark pixels)."""
    return ImageOps.invert(gray.convert("L")).convert("1", dither=Image.Dither.NONE)


def to_zpl(images):
    """One ZPL label per image: the picture as an uncompressed ^GFA graphic field."""
    out = bytearray()
    for img in images:
        row_bytes = (img.width + 7) // 8
        data = img.tobytes()
        total = len(data)
        out += b"^XA^PW%d^LL%d^FO0,0^GFA,%d,%d,%d," % (img.width, img.height, total, total, row_bytes)
        out += data.hex().upper().encode() + b"^FS^XZ\n"
    return bytes(out)


# Bytes the printer would take as a command even inside raster data: real-time requests
# (DLE EOT, DLE ENQ, DLE DC4) and the cut that marks a page. Their first byte loses one dot.
_REALTIME = re.compile(rb"\x10(?=[\x04\x05\x14])")
_CUT = re.compile(rb"\x1d(?=V)")


def to_escpos(images):
    """One receipt per image: ESC @, the picture in GS v 0 bands, a feed and a cut."""
    out = bytearray()
    for img in images:
        row_bytes = (img.width + 7) // 8
        out += b"\x1b@"
        for top in range(0, img.height, BAND_ROWS):
            band = img.crop((0, top, img.width, min(img.height, top + BAND_ROWS)))
            data = _CUT.sub(b"\x1c", _REALTIME.sub(b"\x00", band.tobytes()))
            out += b"\x1dv0\x00" + bytes((row_bytes & 0xFF, row_bytes >> 8, band.height & 0xFF, band.height >> 8))
            out += data
        out += b"\x1bd\x04\x1dVB\x00"  # feed 4 lines, then feed to the cutter and cut
    return bytes(out)


def draw(data, ctype, language, capabilities_json):
    """The print data of a PDF or image for a printer of language (ZPL or ESCPOS)."""
    width, height, _ = media(capabilities_json)
    images = pages(data, ctype, width, height if language == ZPL else None)
    return to_zpl(images) if language == ZPL else to_escpos(images)

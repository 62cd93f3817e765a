"""PDF and image jobs drawn for label and receipt printers: the page reaches the printer
simulator as ZPL ^GFA or ESC/POS GS v 0, one label or receipt per page, and the simulator's
preview shows the source page. PDFs come from Pillow's writer and from hand-written
vector PDF, drawn by PDFium; neither is ours."""
import base64
import io
import json
import urllib.request

import pytest
from PIL import Image, ImageDraw

from firmware import cdd
from tests.unit.test_printnode import Origin, pn, printer
from tests.unit.test_service_api import claimed_printer
from tools import preview
from tools.printersim.printer import EscPosPrinter, ZplPrinter
from tools.printservice import raster
from tools.printservice.client import Client

ZPL_CAPS = json.dumps(cdd.capabilities("zpl", "application/x-zpl"))
ESCPOS_CAPS = json.dumps(cdd.capabilities("escpos", "application/x-escpos"))


def label_page(size=(812, 1218), text="SHIP TO: DOCK 7"):
    """A shipping label as a picture: a frame, bars and text."""
    img = Image.new("L", size, 255)
    d = ImageDraw.Draw(img)
    w, h = size
    d.rectangle([20, 20, w - 20, h // 4], outline=0, width=6)
    for x in range(100, w - 100, 12):
        d.rectangle([x, h // 3, x + 4, h // 2], fill=0)
    d.text((50, h * 2 // 3), text, fill=0, font=preview._font(min(60, w // 14)))
    return img


def pdf_of(*images, dpi=203):
    out = io.BytesIO()
    images[0].save(out, "PDF", resolution=dpi, save_all=True, append_images=list(images[1:]))
    return out.getvalue()


def png_of(image):
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def vector_pdf(width_pt, height_pt, content):
    """A one-page PDF drawn by a content stream, with a correct cross-reference table."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R >>" % (width_pt, height_pt),
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def black(img):
    return img.convert("L").point(lambda v: 0 if v < 128 else 255)


def mismatch(a, b):
    """Of the pixels black in either of two pictures of the same size, the share black in
    only one (0: the same picture)."""
    assert a.size == b.size, (a.size, b.size)
    a, b = black(a).tobytes(), black(b).tobytes()
    inked = sum(x == 0 or y == 0 for x, y in zip(a, b))
    return sum(x != y for x, y in zip(a, b)) / inked


def printed(sim_class, data, tmp_path):
    sim = sim_class(str(tmp_path / "sim"))
    replies = b""
    for i in range(0, len(data), 4096):  # no faster than its buffer drains
        sim.feed(data[i:i + 4096])
        sim.engine_step()
        replies += sim.take_outbox()
    assert sim.lost == 0
    sim.close()
    return sim.printed, replies


def test_media_comes_from_the_agents_cdd():
    assert raster.media(ZPL_CAPS) == (812, 1218, 203)
    assert raster.media(ESCPOS_CAPS) == (575, None, 203)  # 72 mm printable of an 80 mm roll
    assert raster.media(json.dumps(cdd.capabilities("zpl", "application/x-zpl", 50, 300))) == (590, None, 300)
    assert raster.media(json.dumps(cdd.capabilities("escpos", "application/x-escpos", 58))) == (399, None, 203)
    assert raster.media("not json") == (812, None, 203)


def test_a_two_page_pdf_prints_two_labels_that_look_like_its_pages(tmp_path):
    pages = [label_page(text="PARCEL 1 OF 2"), label_page(text="RETURN LABEL")]
    zpl = raster.draw(pdf_of(*pages), "application/pdf", raster.ZPL, ZPL_CAPS)
    labels, _ = printed(ZplPrinter, zpl, tmp_path)
    assert len(labels) == 2
    for label, page in zip(labels, pages):
        assert label.startswith(b"^XA^PW812^LL1218^FO0,0^GFA,")
        assert mismatch(preview.render_zpl(label), page) < 0.01
    assert mismatch(preview.render_zpl(labels[0]), pages[1]) > 0.05  # the comparison tells pages apart


def test_a_vector_pdf_is_drawn_to_scale():
    # a 4 x 6 in page (288 x 432 pt) with a filled box 1 in from the left and top, 2 in wide, 1 in high
    pdf = vector_pdf(288, 432, b"0 g 72 288 144 72 re f")
    [page] = raster.pages(pdf, "application/pdf", 812, 1218)
    box = page.getbbox()  # set bits are the dots printed
    assert box == pytest.approx((203, 203, 609, 406), abs=2)


def test_a_landscape_label_is_turned_for_a_portrait_printer():
    wide = label_page(size=(1218, 812))
    [page] = raster.pages(pdf_of(wide), "application/pdf", 812, 1218)
    [picture] = raster.pages(png_of(wide), "image/png", 812, 1218)
    assert page.size == picture.size == (812, 1218)
    assert mismatch(page, picture) < 0.01
    assert mismatch(page.convert("L").point(lambda v: 255 - v), wide.rotate(-90, expand=True)) < 0.01  # a quarter clockwise


def test_a_png_prints_as_an_escpos_receipt_with_no_stray_commands(tmp_path):
    receipt = label_page(size=(575, 900), text="TABLE 12")
    # rows whose bytes are the printer's real-time request (10 04 01) and its cut (1D 56):
    # sent as they are, they would make the printer answer and cut mid-picture
    bad = Image.frombytes("1", (24, 2), bytes([0x10, 0x04, 0x01, 0x1D, 0x56, 0x42]))
    receipt.paste(0, (200, 850), bad)
    data = raster.draw(png_of(receipt), "image/png", raster.ESCPOS, ESCPOS_CAPS)
    docs, replies = printed(EscPosPrinter, data, tmp_path)
    assert len(docs) == 1 and replies == b""
    assert b"\x10\x04" not in data and data.count(b"\x1dV") == 1
    shown = preview.render_escpos(docs[0])
    top = 20  # the preview's margin above the first line
    assert mismatch(shown.crop((0, top, 575, top + 900)), receipt) < 0.01


def test_what_cannot_be_drawn_gets_a_clear_error():
    with pytest.raises(raster.CannotDraw, match="not a PDF"):
        raster.pages(b"%PDF-1.4 garbage", "application/pdf", 812)
    with pytest.raises(raster.CannotDraw, match="not an image"):
        raster.pages(b"\x89PNG\r\n\x1a\nnope", "image/png", 812)
    with pytest.raises(raster.CannotDraw, match="1 to 50 pages"):
        raster.pages(pdf_of(*[Image.new("L", (10, 10), 255)] * 51), "application/pdf", 812)
    with pytest.raises(raster.CannotDraw, match="dots long"):
        raster.pages(vector_pdf(72, 72 * 200, b""), "application/pdf", 812)
    huge = io.BytesIO()
    Image.new("1", (10000, 5000)).save(huge, "PNG")  # 50 megapixels in a few kilobytes
    with pytest.raises(raster.CannotDraw, match="pixels"):
        raster.pages(huge.getvalue(), "image/png", 812)
    assert raster.sniff(b"%PDF-1.7") == "application/pdf" and raster.sniff(b"^XA") is None


def test_gcp_submit_draws_a_pdf_for_a_label_printer(svc):
    pid, tok, _, _ = claimed_printer(svc, capabilities=ZPL_CAPS)
    pdf = pdf_of(label_page())
    job = Client(svc.http_url + "/cloudprint", svc.owner_key).submit(pid, pdf, "application/pdf", "label")
    assert job["contentType"] == "application/x-zpl"
    stored = b"".join(svc.store.job_chunks(job["id"]))
    assert stored.startswith(b"^XA^PW812^LL1218")
    assert svc.store.get("jobs", id=job["id"])["submitted_as"] == "application/pdf"
    raw_only = {"version": "1.0", "printer": {"supported_content_type": [{"content_type": "application/vnd.cups-raw"}]}}
    plain = claimed_printer(svc, capabilities=json.dumps(raw_only))[0]  # no graphics language: nothing to draw in
    with pytest.raises(Exception, match="does not accept application/pdf"):
        Client(svc.http_url + "/cloudprint", svc.owner_key).submit(plain, pdf, "application/pdf", "label")


def test_printnode_pdf_base64_is_drawn_and_a_bad_pdf_refused(svc):
    pid, num, auth = printer(svc)
    pdf = pdf_of(label_page(), label_page(text="PAGE 2"))
    status, job_num, _ = pn(svc, "POST", "/printjobs", {
        "printerId": num, "title": "label", "contentType": "pdf_base64", "source": "t",
        "content": base64.b64encode(pdf).decode()})
    assert status == 201
    job = svc.store.get("jobs", num=job_num)
    assert (job["content_type"], job["submitted_as"]) == ("application/x-zpl", "pdf_base64")
    assert b"".join(svc.store.job_chunks(job["id"])).count(b"^XA") == 2
    assert pn(svc, "GET", "/printjobs/%d" % job_num)[1][0]["contentType"] == "pdf_base64"
    status, body, _ = pn(svc, "POST", "/printjobs", {
        "printerId": num, "title": "label", "contentType": "pdf_base64", "source": "t",
        "content": base64.b64encode(b"%PDF-1.4 not really").decode()})
    assert status == 400 and body["code"] == "InvalidContent" and "not a PDF" in body["message"]


def sample_multipart(fields, files, file_type):
    """A body as the GCP Python samples' EncodeMultiPart builds it (CRLF lines, one
    Content-Type for every file part)."""
    boundary = "----------boundary_of_the_samples"
    lines = []
    for key, value in fields:
        lines += ["--" + boundary, 'Content-Disposition: form-data; name="%s"' % key, "", value]
    for key, filename, value in files:
        lines += ["--" + boundary, 'Content-Disposition: form-data; name="%s"; filename="%s"' % (key, filename),
                  "Content-Type: %s" % file_type, "", value]
    lines += ["--" + boundary + "--", ""]
    return "\r\n".join(lines).encode(), "multipart/form-data; boundary=" + boundary


def test_the_gcp_samples_submit_a_pdf_as_a_data_url_and_it_is_drawn(svc):
    pid, _, _, _ = claimed_printer(svc, capabilities=ZPL_CAPS)
    data_url = "data:application/pdf;base64," + base64.b64encode(pdf_of(label_page())).decode()
    # SubmitJob('pdf', path): the content field and a content file part both carry the data URL
    body, ctype = sample_multipart(
        [("printerid", pid), ("title", "Dec0112label.pdf"), ("content", data_url), ("contentType", "dataUrl")],
        [("capabilities", "capabilities", '{"capabilities":[]}'), ("content", "label.pdf", data_url)], "dataUrl")
    req = urllib.request.Request(svc.http_url + "/cloudprint/submit", data=body, method="POST", headers={
        "Content-Type": ctype, "Authorization": "OAuth " + svc.owner_key})
    with urllib.request.urlopen(req, timeout=10) as r:
        reply = json.loads(r.read())
    assert reply["success"], reply
    job = svc.store.get("jobs", id=reply["job"]["id"])
    assert (job["content_type"], job["submitted_as"]) == ("application/x-zpl", "dataUrl")
    assert b"".join(svc.store.job_chunks(job["id"])).startswith(b"^XA^PW812^LL1218^FO0,0^GFA,")


def test_a_gcp_submit_by_url_fetches_the_file(svc):
    pid, _, _, _ = claimed_printer(svc, capabilities=ZPL_CAPS)
    owner = Client(svc.http_url + "/cloudprint", svc.owner_key)
    for data, stored in ((png_of(label_page()), b"^XA^PW812"), (b"^XA^FDfetched^FS^XZ", b"^XA^FDfetched^FS^XZ")):
        origin = Origin(data, user=None)
        try:
            job = owner.submit(pid, origin.url.encode(), "url", "by url")
        finally:
            origin.close()
        assert b"".join(svc.store.job_chunks(job["id"])).startswith(stored)
        assert job["contentType"] == "application/x-zpl"
    with pytest.raises(Exception, match="could not be reached"):
        owner.submit(pid, origin.url.encode(), "url", "gone")
    with pytest.raises(Exception, match="not a data URL"):
        owner.submit(pid, b"data;nothing", "dataUrl", "bad")

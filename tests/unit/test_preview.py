"""PNG previews draw what the printer was sent."""
import segno

from tools import preview
from tools.printersim import preview as record_preview
from tools.printersim.printer import make


def dark(img, x, y):
    return img.getpixel((x, y)) < 128


def test_zpl_box_and_qr_land_where_the_label_puts_them():
    img = preview.render_zpl(b"^XA^FO100,100^GB60,60,60^FS^FO300,40^BQN,2,4^FDQA,hello dock^FS^XZ")
    assert dark(img, 130, 130) and not dark(img, 200, 200)
    module = 8  # ^BQ magnification 4, two dots a module at 203 dpi
    for r, row in enumerate(segno.make("hello dock", error="l", micro=False).matrix):
        for c, bit in enumerate(row):
            assert dark(img, 300 + c * module + 4, 40 + r * module + 4) == bool(bit), (r, c)


def test_zpl_field_hex_escapes_and_code128():
    img = preview.render_zpl(b"^XA^FH_^FO20,20^A0N,40,40^FDa_5Eb^FS^FO20,200^BCN,80^FD12345^FS^XZ")
    assert any(dark(img, x, y) for x in range(20, 120) for y in range(20, 60))  # text drawn
    bars = [dark(img, x, 240) for x in range(20, 400)]
    assert bars[0] and 10 < sum(bars) < len(bars)  # bars start at ^FO and alternate


def test_escpos_receipt_text_qr_and_cut():
    qr = b"https://x/q"
    n = len(qr) + 3
    receipt = (b"\x1b@\x1ba\x01Title\n\x1ba\x00Line\n"
               + b"\x1d(k" + bytes((n, 0)) + b"1P0" + qr + b"\x1d(k\x03\x001Q0" + b"\n\x1dVB\x00")
    img = preview.render_escpos(receipt)
    assert img.width == preview.RECEIPT_WIDTH and img.height > 200
    assert any(dark(img, x, img.height - 2) for x in range(0, img.width, 50))  # the cut line
    assert sum(dark(img, x, y) for x in range(0, img.width, 4) for y in range(80, img.height - 10, 4)) > 50


def test_render_dir_writes_one_png_per_printed_document(tmp_path):
    p = make("zpl", str(tmp_path))
    p.feed(b"^XA^FO10,10^FDone^FS^XZ^XA^FO10,10^FDtwo^FS^XZ")
    p.engine_step()
    paths = record_preview.render_dir(str(tmp_path))
    assert [path.rsplit("/", 1)[1] for path in paths] == ["0001.png", "0002.png"]


def test_a_receipt_line_uses_the_printers_48_columns_and_a_longer_one_wraps():
    url = "https://print.example.com:8443/cloudprint/claim?token=ABCDEFGHJKLMN"  # 66 characters
    img = preview.render_escpos(b"\x1b@" + b"x" * 48 + b"\n" + url.encode() + b"\n\x1dVB\x00")

    def ink(row_top):
        return [x for x in range(img.width) for y in range(row_top, row_top + 24) if dark(img, x, y)]
    first = ink(20)
    assert first and max(first) > img.width - preview.CELL and min(first) < preview.CELL  # 48 fit
    wrapped = ink(20 + 2 * preview.LINE_PITCH)  # the URL's 49th character onwards
    assert wrapped and max(wrapped) < 20 * preview.CELL


def test_preview_command_line_errors_are_one_line(tmp_path, capsys):
    import pytest
    with pytest.raises(SystemExit) as e:
        record_preview.main(["--help"])
    assert e.value.code == 0 and "RECORD_DIR" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        record_preview.main([])
    assert e.value.code == 2 and "record_dir" in capsys.readouterr().err
    assert record_preview.main([str(tmp_path / "nowhere")]) == 2
    assert "not a printer simulator's --record directory" in capsys.readouterr().err


def test_a_jobs_sheet_shows_each_label_and_each_receipt_of_it():
    from io import BytesIO
    from PIL import Image
    two = b"^XA^FO10,10^GB200,200,200^FS^XZ\n^XA^FO10,10^FDtwo^FS^XZ"
    assert preview.documents(two, "zpl") == [b"^XA^FO10,10^GB200,200,200^FS^XZ", b"^XA^FO10,10^FDtwo^FS^XZ"]
    img = Image.open(BytesIO(preview.sheet(two, "zpl")))
    assert img.size == (2 * preview.LABEL_SIZE[0] + 16, preview.LABEL_SIZE[1])
    assert dark(img, 100, 100) and not dark(img, preview.LABEL_SIZE[0] + 16 + 100, 100)
    receipts = b"\x1b@one\n\x1dVB\x00\x1b@two\n\x1dV\x00"
    assert preview.documents(receipts, "escpos") == [b"\x1b@one\n\x1dVB\x00", b"\x1b@two\n\x1dV\x00"]
    assert Image.open(BytesIO(preview.sheet(receipts, "escpos"))).width == 2 * preview.RECEIPT_WIDTH + 16
    assert preview.sheet(b"no label here", "zpl") is None

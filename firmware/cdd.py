# This printer's capabilities (CDD) and state (CDS) documents (reference §6, §7), and
# telling the service when they changed. Loaded only at registration and at boot.
import binascii
import hashlib
import json

RAW = "application/vnd.cups-raw"


def capabilities(language, content_type, width_mm=0, dpi=203):
    printer = {
        "supported_content_type": [{"content_type": content_type},
                                   {"content_type": RAW}],
        "copies": {"default": 1, "max": 999},
        "input_tray_unit": [{"vendor_id": "roll", "type": "ROLL"}],
        "cover": [{"vendor_id": "head", "type": "CUSTOM", "custom_display_name": "Print head"}],
    }
    printer["dpi"] = {"option": [{"horizontal_dpi": dpi, "vertical_dpi": dpi, "is_default": True}]}
    if language == "zpl" and not width_mm:
        option = {"name": "NA_INDEX_4X6", "width_microns": 101600, "height_microns": 152400}
    elif language == "zpl":
        option = {"name": "CUSTOM", "custom_display_name": "%d mm labels" % width_mm,
                  "width_microns": width_mm * 1000, "vendor_id": "labels%d" % width_mm}
    else:  # a receipt roll prints all but 4 mm each side
        w = (width_mm or 80) * 1000
        option = {"name": "CUSTOM", "custom_display_name": "%d mm roll" % (w // 1000), "width_microns": w,
                  "is_continuous_feed": True, "vendor_id": "roll%d" % (w // 1000),
                  "imageable_area_left_microns": 4000, "imageable_area_right_microns": w - 4000}
    option["is_default"] = True
    printer["media_size"] = {"option": [option]}
    return {"version": "1.0", "printer": printer}


def document(driver):
    """(CDD as JSON text, its capsHash) for this printer."""
    caps = json.dumps(capabilities(driver.language, driver.content_type, driver.media[0], driver.media[1]))
    return caps, caps_hash(caps)


def caps_hash(cdd_json):
    return binascii.hexlify(hashlib.sha256(cdd_json.encode()).digest()[:8]).decode()


def state(printer_state="IDLE"):
    return {"version": "1.0", "printer": {"state": printer_state}}


def sync(api, creds, driver, version, local_settings_field):
    """Send the CDD and the firmware version by /update when they differ from what the
    service was last told (reference §4.3: after a firmware upgrade or a new board
    config); True when creds changed and must be saved."""
    caps, digest = document(driver)
    fields = []
    if creds.get("caps_hash") != digest:
        fields += [("use_cdd", "true", None), ("capabilities", caps, "application/json"),
                   ("capsHash", digest, None)]
    if creds.get("firmware") != version:
        fields.append(("firmware", version, None))
    if not fields:
        return False
    fields.append(local_settings_field)
    api.update(creds["printer_id"], fields)
    creds["caps_hash"] = digest
    creds["firmware"] = version
    return True
